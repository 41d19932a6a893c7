"""Weight movement and prewarmed replicas: loads through the flow network (from a storage tier or
a peer instance), replicas placed in the background, evicted, taken over by an instance, or kept
from a stopping instance; and the placement loop that asks the placer for them.

It owns the link-level side of a load (which :mod:`warmsim.sim.sources` entry gives the path, background
copies counted on their GPUs, the host cache refreshed) and replicas' memory; the replica set itself
changes through the run's :class:`~warmsim.sim.state.SimState`, which tells the views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import simpy

from warmsim.sim.errors import PlanError
from warmsim.sim.memory import PREWARM, WEIGHTS
from warmsim.sim.models import ServedModel
from warmsim.sim.plan_checks import check_group
from warmsim.sim.replica import Replica
from warmsim.sim.sources import SOURCES
from warmsim.sim.types import Evict, Prewarm

if TYPE_CHECKING:
    from warmsim.sim.bundle import Bundle
    from warmsim.sim.cluster import Cluster
    from warmsim.sim.collaborators import Snapshots
    from warmsim.sim.cost import CostModel
    from warmsim.sim.instance import Instance
    from warmsim.sim.load import LoadTracker
    from warmsim.sim.recorder import Recorder
    from warmsim.sim.state import SimState


class Weights:
    """Loads and replicas of one run."""

    def __init__(self, env: simpy.Environment, state: SimState, cluster: Cluster, models: Mapping[str, ServedModel],
                 order: Sequence[str], cost: CostModel, recorder: Recorder, bundle: Bundle, load: LoadTracker,
                 snapshots: Snapshots):
        self.env = env
        self.state = state
        self.cluster = cluster
        self.models = models
        self.order = order
        self.cost = cost
        self.recorder = recorder
        self.bundle = bundle
        self.load = load
        self.snapshots = snapshots

    # ---- loads ----------------------------------------------------------------------------------
    def load_weights(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, background=False,
                     replica: Replica | None = None, peer: Instance | None = None):
        """Move one shard of ``model`` onto each of ``gpus`` from ``source`` (a generator to yield from).

        From a ``peer`` instance, shard ``i`` comes from the peer's GPU ``i``; the peer keeps its
        weights (and its GPUs) until the copy ends, and its GPUs count a copy in progress.
        """
        src = SOURCES[source]
        if src.link_kinds is None or (replica is not None and replica.evicted):
            return
        if peer is not None:
            yield from self._load_from_peer(model, gpus, source, tag, peer)
            return
        cluster = self.cluster
        node = cluster.nodes[cluster.gpus[gpus[0]].node]
        if src.reads_host_cache and model.name not in node.host_cache:
            raise PlanError(f"{tag}: {model.name} is not in node {node.idx}'s host cache")
        flows = []
        for g in gpus:
            links, cap = src.path(cluster, g)
            if background and cluster.gpus[g].instances:
                cap = min(cap, links[-1].capacity * (1.0 - self.cost.interference().copy_slowdown))
            flows.append(cluster.net.transfer(model.shard_bytes, links, tag, cap))
            if background:
                cluster.gpus[g].background_flows += 1
        if replica is not None:
            replica.flows = flows
        try:
            yield self.env.all_of([f.done for f in flows])
        finally:
            # (After an eviction cancelled the copy, evict() already released the GPUs; this
            # generator then never resumes and only closes when garbage-collected.)
            if background and not (replica is not None and replica.copy_released):
                for g in gpus:
                    cluster.gpus[g].background_flows -= 1
        node.host_cache.touch(model.name, model.weight_bytes)

    def _load_from_peer(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, peer: Instance):
        cluster = self.cluster
        src = SOURCES[source]
        flows = []
        for g, p in zip(gpus, peer.gpus):
            links, cap = src.path(cluster, g, peer_gpu=p)
            flows.append(cluster.net.transfer(model.shard_bytes, links, tag, cap))
        for p in peer.gpus:
            cluster.gpus[p].background_flows += 1  # the copy reads the serving GPUs' HBM
        try:
            yield self.env.all_of([f.done for f in flows])
        finally:
            for p in peer.gpus:
                cluster.gpus[p].background_flows -= 1

    # ---- replicas -------------------------------------------------------------------------------
    def _add_replica(self, model: ServedModel, gpus: tuple[int, ...]) -> Replica:
        rep = Replica(self.env, self.state.new_id(), model, gpus)
        for g in gpus:
            self.cluster.gpus[g].mem.set(PREWARM, rep.id, model.shard_bytes)
        self.state.add_replica(rep)
        return rep

    def apply_prewarm(self, p: Prewarm) -> None:
        """Verify and apply a prewarm: memory now, the load in the background."""
        gpus_, replicas = self.cluster.gpus, self.state.replicas
        model = check_group(self.models, gpus_, p.model, p.gpus, "Prewarm")
        src = SOURCES.get(p.source)
        if src is not None and src.peer:
            raise PlanError(f"Prewarm {p.model}: prewarming from a peer instance ({p.source}) is not modelled")
        for g in p.gpus:
            # (A GPU serving the same model may take a replica, as the authors' code allows.)
            if any(replicas[r].model.name == p.model for r in gpus_[g].replicas):
                raise PlanError(f"Prewarm {p.model} on GPU {g}: that GPU already holds a replica of {p.model}")
            if not gpus_[g].mem.fits(model.shard_bytes, PREWARM, None):
                raise PlanError(f"Prewarm {p.model} on GPU {g}: needs {model.shard_bytes} B, "
                                f"{gpus_[g].mem.free_bytes} B free")
        rep = self._add_replica(model, p.gpus)
        self.recorder.counters[p.model]["prewarms"] += 1
        self.recorder.event(self.env.now, "replica", rep.id, p.model, p.gpus, "loading", p.source)
        self.env.process(self._prewarm_load(rep, p.source))

    def _prewarm_load(self, rep: Replica, source: str):
        yield from self.load_weights(rep.model, rep.gpus, source, ("replica", rep.id), background=True, replica=rep)
        if not rep.evicted and rep.id in self.state.replicas:
            self.state.replica_ready(rep)
            self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "ready")

    def evict(self, rid: int, why: str = "") -> int:
        """Drop replica ``rid``; returns the bytes freed per GPU."""
        rep = self.state.replicas.get(rid)
        if rep is None:
            raise PlanError(f"Evict: no replica {rid}")
        if rep.adopter is not None:
            raise PlanError(f"Evict: replica {rid} is being taken over by instance {rep.adopter}")
        gpus_ = self.cluster.gpus
        rep.evicted = True
        cancelled = False
        for f in rep.flows:
            if not f.done.triggered:
                self.cluster.net.cancel(f)
                cancelled = True
        if cancelled and not rep.copy_released:
            # The background copy stops now: its GPUs no longer pay the copy interference. (Left to
            # load_weights' ``finally``, this happened whenever the garbage collector closed the
            # stalled generator, so results depended on GC timing.)
            rep.copy_released = True
            for g in rep.gpus:
                gpus_[g].background_flows -= 1
        for g in rep.gpus:
            gpus_[g].mem.release(PREWARM, rep.id)
        self.state.remove_replica(rep)
        self.recorder.counters[rep.model.name]["evictions"] += 1
        self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "evicted", why)
        return rep.model.shard_bytes

    def adopt_replica(self, inst: Instance) -> None:
        """``inst`` takes its replica's weights over: prewarm memory becomes the instance's."""
        rep = inst.replica
        assert rep is not None  # only an instance started from a replica adopts one
        for g in rep.gpus:
            mem = self.cluster.gpus[g].mem
            mem.release(PREWARM, rep.id)
            mem.set(WEIGHTS, inst.id, inst.model.shard_bytes)
        self.state.remove_replica(rep)
        self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "activated", f"instance {inst.id}")

    def keep_on_drain(self, inst: Instance) -> None:
        """With ``keep_weights_on_stop``, the draining instance's weights are announced at once as a
        replica that becomes ready when the instance stops, so placement counts them instead of
        loading another copy. Its memory is still the instance's until then; its GPUs stay busy."""
        if not self.bundle.keep_weights_on_stop or inst.compute_share < 1.0:
            return
        replicas, gpus_ = self.state.replicas, self.cluster.gpus
        if any(replicas[r].model.name == inst.model.name for g in inst.gpus for r in gpus_[g].replicas):
            return
        rep = Replica(self.env, self.state.new_id(), inst.model, inst.gpus)
        self.state.add_replica(rep)
        inst.successor = rep
        self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "pending",
                           f"kept from instance {inst.id}")

    def keep_on_stop(self, inst: Instance) -> None:
        """The stopped instance's kept weights (if still wanted) become its successor replica's."""
        rep = inst.successor
        if rep is not None and not rep.evicted:
            for g in rep.gpus:
                self.cluster.gpus[g].mem.set(PREWARM, rep.id, rep.model.shard_bytes)
            self.state.replica_ready(rep)
            self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "ready", "kept")

    # ---- placement ------------------------------------------------------------------------------
    def placer_loop(self):
        """Every ``placer.period_s`` (first at time 0): the placer's prewarms and evictions. A
        prediction changes only with the window asked for and the observations made, so the
        predictor is asked once per (window, observation count), not at every tick. A placer that
        declares its inputs (:class:`warmsim.sim.policy_protocols.DemandAwarePlacer`) and wanted nothing is not
        asked again, nor its snapshot built, until one of them changes."""
        env, load, state, order = self.env, self.load, self.state, self.order
        placer, pred = self.bundle.placer, self.bundle.predictor
        assert placer is not None  # the loop runs only for a bundle with a placer
        wants_more = getattr(placer, "wants_more", None)
        key: tuple[int, int] | None = None
        cached = {m: (0.0, 0.0) for m in order}
        idle_inputs = None  # the inputs at which a demand-aware placer last wanted nothing
        while True:
            # window 0 through a prewarm lead: the artifact's predictor clock starts at launch and is
            # reset at the first request (prewarm_manager.py init_timer, request_handler)
            window = max(0, int(env.now // pred.window_s)) if pred is not None else 0
            if pred is not None and key != (window, load.observations):
                key = (window, load.observations)
                cached = {m: pred.predict(m, window) for m in order}
            inputs = (key, load.live_changes, state.replica_changes)
            if wants_more is None or inputs != idle_inputs:
                preds = dict(cached)
                snap = self.snapshots.snapshot()
                if wants_more is not None and not wants_more(snap, preds):
                    idle_inputs = inputs
                else:
                    idle_inputs = None
                    self._apply(placer.plan(snap, preds))
            yield env.timeout(placer.period_s)

    def _apply(self, actions) -> None:
        for action in actions:
            if isinstance(action, Prewarm):
                self.apply_prewarm(action)
            elif isinstance(action, Evict):
                self.evict(action.replica, "placement")
            else:
                raise PlanError(f"placer returned {action!r}")
