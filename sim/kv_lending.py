"""KV lending (WarmServe's KV reservation, warmserve.md section 5): idle KV blocks of running
engines lent to the GPU pool for prewarming, and taken back (evicting replicas if needed) when an
engine needs them.

It owns the set of engines touched since the lending loop last looked: the policy is a pure
function of an engine's block counts, so an engine untouched since a step that changed nothing
would get the same no-op, and the loop visits only the touched ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import simpy

from warmsim.sim.memory import KV
from warmsim.sim.types import ACTIVE

if TYPE_CHECKING:
    from warmsim.sim.cluster import Cluster
    from warmsim.sim.collaborators import Evictor
    from warmsim.sim.instance import Instance
    from warmsim.sim.policy_protocols import KVPolicy
    from warmsim.sim.state import SimState


class KVLending:
    """The KV-reservation loop of one run (``policy``: the bundle's, if any) and the reclaims engines
    ask for; replicas in the way of a reclaim are dropped through ``evictor``."""

    def __init__(self, env: simpy.Environment, state: SimState, cluster: Cluster, policy: KVPolicy | None,
                 evictor: Evictor):
        self.env = env
        self.state = state
        self.cluster = cluster
        self.policy = policy
        self.evictor = evictor
        self.dirty: set[int] = set()  # instances whose engine changed since the loop last looked

    def loop(self):
        """Each period the bundle's policy says how many free KV blocks of each engine to lend to
        the GPU pool, or to take back."""
        policy, instances = self.policy, self.state.instances
        assert policy is not None  # the loop runs only for a bundle with a KV policy
        dirty = self.dirty
        while True:
            yield self.env.timeout(policy.period_s)
            todo = sorted(dirty)  # instance ids grow with creation: the order of sim.instances
            dirty.clear()
            for iid in todo:
                inst = instances.get(iid)
                if inst is None or inst.state != ACTIVE or inst.compute_share < 1.0:
                    continue
                e = inst.engine
                step = policy.step(e.total_blocks, e.inflight, e.free_blocks, e.reserved, e.take_freed())
                if step.reserve > 0:
                    self.set_reserved(inst, e.reserved + step.reserve)
                elif step.give_back > 0:
                    self.reclaim(inst, step.give_back)

    def set_reserved(self, inst: Instance, blocks: int) -> None:
        """Lend ``blocks`` of ``inst``'s KV blocks in all: its KV memory shrinks by them."""
        e = inst.engine
        e.set_reserved(blocks)  # an engine with prefix caching evicts cached blocks that no longer fit
        self.dirty.add(inst.id)
        kv_bytes = (e.total_blocks - e.reserved) * inst.block_bytes
        for g in inst.gpus:
            self.cluster.gpus[g].mem.set(KV, inst.id, kv_bytes)

    def reclaim(self, inst: Instance, blocks: int) -> None:
        """Take back up to ``blocks`` reserved KV blocks, evicting prewarmed replicas if needed."""
        e = inst.engine
        gpus_, replicas = self.cluster.gpus, self.state.replicas
        blocks = min(blocks, e.reserved)
        need = blocks * inst.block_bytes
        for g in inst.gpus:
            gpu = gpus_[g]
            for r in sorted(gpu.replicas, key=lambda r: -replicas[r].created):
                if gpu.mem.free_bytes >= need:
                    break
                self.evictor.evict(r, f"KV reclaimed by instance {inst.id}")
        room = min(gpus_[g].mem.free_bytes for g in inst.gpus) // inst.block_bytes
        self.set_reserved(inst, e.reserved - min(blocks, room))
