"""Instances: activation plans verified and applied, the instance lifecycle's callbacks (active,
draining, stopped), the autoscaler's control loop, the initial placement at time 0, and the step
slowdown of a GPU shared with other engines or with a background copy.

It adds and removes instances through the run's :class:`~warmsim.sim.state.SimState` (which tells the
views, the load tracker and KV lending) and keeps the instance counters. Its collaborators: the
instances' host (the clock, cluster, costs, recorder), the weights (evictions, kept weights), the
requests (held ones routed once an instance is ready), the snapshots and the serving mechanisms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from warmsim.sim.errors import PlanError
from warmsim.sim.instance import Instance, InstanceHost
from warmsim.sim.models import ServedModel
from warmsim.sim.plan_checks import check_group
from warmsim.sim.sources import SOURCES
from warmsim.sim.types import ACTIVE, DRAINING, STOPPED, Activate

if TYPE_CHECKING:
    from warmsim.sim.bundle import Bundle
    from warmsim.sim.collaborators import HeldRouter, ReplicaKeeper, Snapshots
    from warmsim.sim.load import LoadTracker
    from warmsim.sim.mechanisms.base import Mechanism
    from warmsim.sim.replica import Replica
    from warmsim.sim.state import SimState


class Activations:
    """Instance starts and stops of one run (``host``: what every new instance is handed)."""

    def __init__(self, host: InstanceHost, state: SimState, models: Mapping[str, ServedModel], order: Sequence[str],
                 bundle: Bundle, load: LoadTracker, weights: ReplicaKeeper, requests: HeldRouter,
                 snapshots: Snapshots, mechanisms: Sequence[Mechanism]):
        self.host = host
        self.env = host.env
        self.cluster = host.cluster
        self.state = state
        self.models = models
        self.order = order
        self.bundle = bundle
        self.load = load
        self.weights = weights
        self.requests = requests
        self.snapshots = snapshots
        self.mechanisms = mechanisms  # filled once the mechanisms are built (they come last)
        self.initial_lines: list[str] = []  # the instances placed at time 0, for the report

    # ---- plan checks ----------------------------------------------------------------------------
    def check_group(self, model_name: str, gpus: tuple[int, ...], what: str, tp: int | None = None) -> ServedModel:
        """The model (at ``tp``) a plan names, if ``gpus`` is a valid TP group for it
        (:func:`warmsim.sim.plan_checks.check_group`)."""
        return check_group(self.models, self.cluster.gpus, model_name, gpus, what, tp)

    def _check_peer(self, act: Activate, model: ServedModel) -> Instance | None:
        """The running instance a peer-sourced activation copies from (``None`` for other sources)."""
        src = SOURCES.get(act.source)
        if src is None or not src.peer:
            if act.peer is not None:
                raise PlanError(f"Activate {act.model}: a peer instance is given but the source is {act.source}")
            return None
        peer = self.state.instances.get(act.peer) if act.peer is not None else None
        if peer is None or peer.model.name != act.model:
            raise PlanError(f"Activate {act.model} from {act.source}: peer {act.peer} is not a live instance of "
                            f"{act.model}")
        if peer.state not in (ACTIVE, DRAINING) or peer.compute_share < 1.0:
            raise PlanError(f"Activate {act.model} from {act.source}: peer {act.peer} is {peer.state}, "
                            "not a running instance that holds its weights")
        gpus_ = self.cluster.gpus
        same_node = gpus_[peer.gpus[0]].node == gpus_[act.gpus[0]].node
        if same_node != src.same_node:
            want = [n for n, s in SOURCES.items() if s.peer and s.same_node == same_node]
            hint = ("the same node" if same_node else "another node") + (f": use {want[0]}" if want else "")
            raise PlanError(f"Activate {act.model} on {act.gpus} from {act.source}: peer {act.peer} is on GPUs "
                            f"{peer.gpus} ({hint})")
        return peer

    # ---- starting -------------------------------------------------------------------------------
    def apply_activate(self, act: Activate, ready_at_start: bool = False) -> Instance:
        """Verify and apply an activation: evictions, memory, the instance's lifecycle process. A plan
        a serving mechanism owns (a wake, a pipeline: :mod:`warmsim.sim.mechanisms`) is its to apply."""
        state, host = self.state, self.host
        for mech in self.mechanisms:
            if mech.owns(act):
                return mech.apply(act, ready_at_start)
        gpus_ = self.cluster.gpus
        model = self.check_group(act.model, act.gpus, "Activate", act.tp)
        shared = act.compute_share < 1.0
        for g in act.gpus:
            gpu = gpus_[g]
            if gpu.instances and not shared:
                raise PlanError(f"Activate {act.model}: GPU {g} already serves instances {sorted(gpu.instances)}")
            if shared and sum(state.instances[i].compute_share for i in gpu.instances) + act.compute_share > 1.0 + 1e-9:
                raise PlanError(f"Activate {act.model}: compute shares on GPU {g} would exceed 1")
        peer = self._check_peer(act, model) if act.replica is None else None
        rep = None
        if act.replica is not None:
            rep = state.replicas.get(act.replica)
            if rep is None or rep.model.name != act.model or tuple(sorted(rep.gpus)) != tuple(sorted(act.gpus)):
                raise PlanError(f"Activate {act.model}: replica {act.replica} is not {act.model} on {act.gpus}")
            if rep.adopter is not None:
                raise PlanError(f"Activate {act.model}: replica {act.replica} is already taken by instance {rep.adopter}")
        freed = 0
        if self.bundle.evict_on_activate:
            victims = sorted({r for g in act.gpus for r in gpus_[g].replicas} - {act.replica})
            for r in victims:
                freed += self.weights.evict(r, f"activation of {act.model}")
        for mech in self.mechanisms:
            mech.prepare(act, model)
        inst_id = state.new_id()
        if act.kv_bytes_per_gpu is not None:
            kv = act.kv_bytes_per_gpu
        else:
            free = min(gpus_[g].mem.free_bytes for g in act.gpus)
            kv = free - (0 if rep is not None else model.shard_bytes)
        block_bytes = host.engine_spec.block_size * model.kv_bytes_per_token_per_gpu
        if kv < block_bytes:
            raise PlanError(f"Activate {act.model} on {act.gpus}: no room for KV cache after weights")
        kv = (kv // block_bytes) * block_bytes
        inst = Instance(host, inst_id, model, tuple(act.gpus), act.source if rep is None else "prewarmed",
                        replica=rep, compute_share=act.compute_share, kv_bytes_per_gpu=kv,
                        ready_at_start=ready_at_start, peer=peer, max_num_seqs=act.max_num_seqs)
        return self.install(inst, act, rep, freed, ready_at_start)

    def install(self, inst: Instance, act: Activate, rep: Replica | None = None, freed: int = 0,
                ready_at_start: bool = False,
                cold: bool = True) -> Instance:
        """Put a verified new instance in place: its replica, host-cache pin, memory, GPUs, counters and
        lifecycle process (``cold``: a cold start when it takes over no replica; a wake is not)."""
        host = self.host
        gpus_ = self.cluster.gpus
        if rep is not None:
            rep.adopter = inst.id
        if rep is None and not ready_at_start and SOURCES[act.source].reads_host_cache:
            # The checkpoint must still be in the node's host cache when the load starts (after the
            # process start): pin it now, so other loads cannot push it out in between.
            cache = self.cluster.nodes[gpus_[act.gpus[0]].node].host_cache
            if act.model not in cache:
                raise PlanError(f"Activate {act.model} from {act.source}: not in node "
                                f"{gpus_[act.gpus[0]].node}'s host cache")
            cache.pin(act.model)
            inst.cache_pin = cache
        inst.sync_free_s = host.memswitch.sync_free_s(host.cost, freed)
        for mech in self.mechanisms:
            mech.on_created(inst)
        inst.commit_memory()
        self.state.add_instance(inst)
        host.recorder.gpus_of_instance[inst.id] = ",".join(map(str, inst.gpus))
        c = host.recorder.counters[act.model]
        if not ready_at_start:
            c["instance_starts"] += 1
            self.load.pending_changed(act.model, +1)
            inst.counted_pending = True
            if rep is None:
                c["cold_starts"] += int(cold)
            elif rep.ready.triggered:
                c["prewarm_hits"] += 1
            else:
                c["prewarm_hits_loading"] += 1
        inst.process = self.env.process(inst.lifecycle())
        return inst

    def try_start(self, model: str) -> bool:
        """Ask the activator for an instance of ``model``; False if it has none to offer."""
        activator = self.bundle.activator
        if activator is None:
            return False
        act = activator.choose(self.snapshots.snapshot(), model)
        if act is None:
            return False
        if act.model != model:
            raise PlanError(f"activator asked for {model} returned a plan for {act.model}")
        self.apply_activate(act)
        return True

    def initial(self) -> None:
        """The bundle's initial placement, ready at time 0."""
        initial = self.bundle.initial
        if initial is None:
            return
        w = self.host.workload
        rates = {m: float(np.sum(w.model == j)) / max(w.duration_s, 1e-9) for j, m in enumerate(self.order)}
        for act in initial.place(self.snapshots.snapshot(), rates):
            inst = self.apply_activate(act, ready_at_start=True)
            cap = f", max_num_seqs {act.max_num_seqs}" if act.max_num_seqs is not None else ""
            self.initial_lines.append(f"{act.model} on GPUs {list(inst.gpus)} (tp {inst.model.tp}, compute share "
                                      f"{inst.compute_share:.3f}, KV {inst.kv_bytes_per_gpu / 2**30:.1f} GiB/GPU{cap})")

    # ---- lifecycle callbacks --------------------------------------------------------------------
    def on_active(self, inst: Instance) -> None:
        """``inst`` serves: it no longer counts as a start in progress; held requests may go to it."""
        if inst.counted_pending:
            inst.counted_pending = False
            self.load.pending_changed(inst.model.name, -1)
        self.requests.route_held(inst.model.name)

    def on_stopped(self, inst: Instance) -> None:
        """``inst``'s engine stopped: it leaves its GPUs and memory (its kept weights become a replica)."""
        inst.set_state(STOPPED)
        self.state.remove_instance(inst)
        inst.release_memory()
        self.weights.keep_on_stop(inst)

    def step_slowdown(self, inst: Instance, phase: str, batch: int, tokens: int | None = None) -> float:
        """Step-time factor of one ``phase`` step of ``batch`` sequences (``tokens`` in a prefill): on a shared GPU, the
        bundle's sharing model given the share and the co-located engines mid-step now (an idle
        neighbour costs nothing); times the interference of a background copy onto its GPUs."""
        f = 1.0
        gpus = self.cluster.gpus
        if inst.compute_share < 1.0:
            instances = self.state.instances
            busy = {i for g in inst.gpus for i in gpus[g].instances if i != inst.id and instances[i].engine.busy}
            f = self.bundle.sharing.factor(phase, inst.compute_share, batch, len(busy), tokens=tokens)
        for g in inst.gpus:
            if gpus[g].background_flows:
                return f * (1.0 + self.host.cost.interference().compute_slowdown)
        return f

    # ---- autoscaling ----------------------------------------------------------------------------
    def control_loop(self):
        """Every ``autoscaler.period_s``: sample the load, then drain and start what it decides."""
        scaler = self.bundle.autoscaler
        assert scaler is not None  # the loop runs only for a bundle with an autoscaler
        while True:
            yield self.env.timeout(scaler.period_s)
            self.load.sample()
            decision = scaler.decide(self.snapshots.snapshot())
            for iid in decision.stop:
                inst = self.state.instances.get(iid)
                if inst is None or inst.state != ACTIVE:
                    raise PlanError(f"autoscaler stopped instance {iid}, which is not active")
                inst.drain()
            for model in sorted(decision.start):
                for _ in range(int(decision.start[model])):
                    if not self.try_start(model):
                        break
                self.requests.route_held(model)
