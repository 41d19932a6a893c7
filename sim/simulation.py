"""One run: a workload replayed on a cluster under one system (policy bundle).

The simulation owns the clock, the cluster, instances and replicas, and the recorder. Policies are
called at their decision points with a fresh :class:`~policies.types.Snapshot`; every plan is
verified here before it is applied (:class:`~sim.errors.PlanError` otherwise).

Same-time event order (SimPy breaks ties by scheduling order): arrivals are scheduled first at
start-up, so at equal times an arrival precedes a control tick scheduled later; control loops
(autoscaler, placer, retry, KV reservation, predictor windows) each run as their own process.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy

from policies.bundle import Bundle
from policies.types import (ACTIVE, DRAINING, LIVE_STATES, STOPPED, Activate, Evict, GPUView, InstanceView,
                            LoadView, ModelView, Prewarm, ReplicaView, Snapshot)
from sim.cluster import Cluster, ClusterSpec
from sim.cost import PEER_SOURCES, CostModel
from sim.engine import EngineSpec
from sim.errors import PlanError
from sim.instance import Instance
from sim.memory import KV, PREWARM, WEIGHTS
from sim.models import ServedModel
from sim.recorder import PENDING, Recorder
from sim.replica import Replica


@dataclass(frozen=True)
class SimSpec:
    """Run-level knobs."""

    retry_s: float = 1.0  # requests held at the router re-check this often
    request_timeout_s: float = 600.0  # a request held at the router longer than this is dropped
    drain_s: float = 600.0  # after the workload ends, unfinished requests get this long, then drop
    load_window_s: float = 5.0  # the autoscaler's averaging window of in-flight load
    service_estimate_batch: int = 16  # batch assumed when turning history into in-flight load


class _Areas(dict):
    """One load sample: each model's in-flight area at time ``t``. It stores only the models busy
    at ``t``; an idle model's area did not move until its next 0 -> 1 change (or until now), so a
    lookup recovers it from the simulation's record of those changes."""

    __slots__ = ("sim", "t")

    def __init__(self, sim: "Simulation", t: float, busy: dict):
        super().__init__(busy)
        self.sim, self.t = sim, t

    def __missing__(self, m: str) -> float:
        for t, area in self.sim._wakes[m]:
            if t >= self.t:
                return area
        return self.sim.area[m]


class Simulation:
    """Replay ``workload`` on ``cluster_spec`` under ``bundle``; :meth:`run` returns the recorder."""

    def __init__(self, workload, models: dict[str, ServedModel], cluster_spec: ClusterSpec, cost: CostModel,
                 bundle: Bundle, engine_spec: EngineSpec = EngineSpec(), spec: SimSpec = SimSpec(),
                 progress=None):
        self.env = simpy.Environment()
        self.workload = workload
        self.models = models
        self.order = list(workload.models)
        self.cost = cost
        self.bundle = bundle
        self.engine_spec = engine_spec
        self.spec = spec
        self.progress = progress
        self.recorder = Recorder(workload)
        self.cluster = Cluster(self.env, cluster_spec, self._on_mem_change)
        if cluster_spec.host_cache_preload:
            for node in self.cluster.nodes:
                for m in self.order:
                    node.host_cache.touch(m, models[m].weight_bytes)
        self.instances: dict[int, Instance] = {}
        self.replicas: dict[int, Replica] = {}
        self._next_id = 0
        self.held: dict[str, deque] = {m: deque() for m in self.order}
        self.pending_start: dict[str, int] = {m: 0 for m in self.order}
        # load tracking: in-flight count, its time integral, peak since the predictor window began
        self.inflight = {m: 0 for m in self.order}
        self.area = {m: 0.0 for m in self.order}
        self.area_t = {m: 0.0 for m in self.order}
        self.window_peak = {m: 0 for m in self.order}
        self.load_samples: deque = deque()
        self.counters = {m: {"cold_starts": 0, "prewarm_hits": 0, "prewarm_hits_loading": 0, "evictions": 0,
                             "prewarms": 0, "instance_starts": 0} for m in self.order}
        self.gpu_busy_area = 0.0
        self.gpu_busy_t = 0.0
        self.gpus_busy = 0
        self.arrivals_done = False
        self.finished = self.env.event()
        self.prediction_log: list[tuple] = []
        self.max_len = {m: models[m].shape.max_model_len for m in self.order}
        # Incremental state behind snapshot() and routing (see "Snapshot caches" below).
        self.by_model: dict[str, dict[int, Instance]] = {m: {} for m in models}
        self._gpu_views: list[GPUView | None] = [None] * len(self.cluster.gpus)
        self._gpu_dirty: set[int] = set(range(len(self.cluster.gpus)))  # views to rebuild
        self._gpu_tuple: tuple[GPUView, ...] | None = None
        self._model_views = {m: ModelView(m, s.weight_bytes, s.tp, s.shard_bytes, s.shape.kv_bytes_per_token)
                             for m, s in self.models.items()}
        self._all_models = frozenset(self.order)
        self._load_memo: dict[str, tuple] = {}
        # Incremental load views: models with in-flight > 0 now (``_busy``), models whose view may
        # differ from the cached one (``_load_active``: busy or busy inside the load window;
        # ``_load_dirty``: live / pending-start counts changed), the cached views, and per model
        # the (time, area) of each 0 -> 1 in-flight change since the oldest load sample.
        self._busy: set[str] = set()
        self._load_active: set[str] = set()
        self._load_dirty: set[str] = set()
        self._load_cache: dict[str, LoadView] = {}
        for m in self.order:  # every model starts idle: in-flight 0, average 0.0, no instances
            key = (0, 0.0, 0, 0, 0)
            self._load_memo[m] = (key, LoadView(*key))
            self._load_cache[m] = self._load_memo[m][1]
        self._wakes: dict[str, deque] = {m: deque() for m in self.order}
        self.live = {m: 0 for m in self.order}  # live instances (starting .. active) per model
        # Incremental instance / replica views and host-cache sets (see "Snapshot caches").
        self._inst_views: dict[int, InstanceView] = {}
        self._inst_dirty: set[int] = set()
        self._inst_tuple: tuple[InstanceView, ...] | None = None
        self._rep_tuple: tuple[ReplicaView, ...] | None = None
        self._host_cache_map: dict[int, frozenset[str]] | None = None
        self._kv_dirty: set[int] = set()  # instances whose engine changed since the KV loop last looked
        self._obs_version = 0  # predictor observations so far (predictions change only with them)
        self.initial_lines: list[str] = []  # the instances placed at time 0, for the report
        self._tp_variants: dict[tuple[str, int], ServedModel] = {}  # a model at another TP (MuxServe meshes)
        self._link_node = {link: n.idx for n in self.cluster.nodes for link in self.cluster.node_links(n.idx)}
        self._link_bw = self.cluster.spec.link_bandwidth()
        self._cache_nodes = [n for n in self.cluster.nodes if not n.host_cache.everything]

    # ---- ids and views --------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # Snapshot caches. A control tick must not cost O(GPUs) when little changed, so each GPU's view
    # is kept until that GPU changes: its memory (every change goes through GPUMemory.set, which
    # calls _on_mem_change) or its instance/replica sets (changed only in this module, each site
    # calls _gpu_changed). Instance and replica views are memoised on their objects, keyed by the
    # fields that change. Every container handed to a policy is still a fresh one per snapshot.
    def _gpu_changed(self, g: int) -> None:
        self._gpu_dirty.add(g)
        self._gpu_tuple = None

    def _gpu_view_tuple(self) -> tuple[GPUView, ...]:
        if self._gpu_tuple is None:
            views = self._gpu_views
            for idx in self._gpu_dirty:
                g = self.cluster.gpus[idx]
                views[idx] = GPUView(idx, g.node, g.mem.capacity_bytes, g.mem.used_bytes, g.mem.kind_bytes(PREWARM),
                                     tuple(sorted(g.instances)), tuple(sorted(g.replicas)))
            self._gpu_dirty.clear()
            self._gpu_tuple = tuple(views)
        return self._gpu_tuple

    def _node_pending(self) -> dict[int, int]:
        """Bytes still to move by flows crossing each node's host-memory, SSD or NIC link (one pass
        over the flows; the same sums, in the same order, as ``net.bytes_pending`` per node)."""
        net = self.cluster.net
        net._advance()
        acc = {n.idx: 0 for n in self.cluster.nodes}
        link_node = self._link_node
        for f in net.flows:
            for n in {link_node[link] for link in f.links if link in link_node}:
                acc[n] += f.remaining
        return {n: int(v) for n, v in acc.items()}

    def instance_changed(self, inst: Instance) -> None:
        """``inst``'s view (state, in-flight count, idle time) or its engine's KV state may have changed."""
        self._inst_dirty.add(inst.id)
        self._kv_dirty.add(inst.id)

    def state_changed(self, inst: Instance, old: str, new: str) -> None:
        """Keep the live-instance counts behind the load views."""
        d = (new in LIVE_STATES) - (old in LIVE_STATES)
        if d:
            self.live[inst.model.name] += d
            self._load_dirty.add(inst.model.name)
        self.instance_changed(inst)

    def _instance_tuple(self) -> tuple[InstanceView, ...]:
        if self._inst_dirty:
            views, instances = self._inst_views, self.instances
            for iid in self._inst_dirty:
                inst = instances.get(iid)
                if inst is not None and iid in views:
                    views[iid] = inst.view()
            self._inst_dirty.clear()
            self._inst_tuple = None
        if self._inst_tuple is None:
            self._inst_tuple = tuple(self._inst_views.values())
        return self._inst_tuple

    def _replicas_changed(self) -> None:
        self._rep_tuple = None

    def _replica_tuple(self) -> tuple[ReplicaView, ...]:
        if self._rep_tuple is None:
            self._rep_tuple = tuple(r.view() for r in self.replicas.values())
        return self._rep_tuple

    def _host_cache_sets(self) -> dict[int, frozenset[str]]:
        m = self._host_cache_map
        if m is None or any(n.host_cache.changed for n in self._cache_nodes):
            m = self._host_cache_map = {}
            for n in self.cluster.nodes:
                n.host_cache.changed = False
                m[n.idx] = self._all_models if n.host_cache.everything else frozenset(n.host_cache.entries)
        return dict(m)

    def snapshot(self) -> Snapshot:
        """A read-only picture of the cluster for a policy."""
        now = self.env.now
        pending = {}
        if self.bundle.meta.get("needs_node_pending", False):
            pending = self._node_pending()
        return Snapshot(
            time_s=now, gpus_per_node=self.cluster.spec.gpus_per_node, gpus=self._gpu_view_tuple(),
            models=dict(self._model_views),
            instances=self._instance_tuple(),
            replicas=self._replica_tuple(),
            load=self._load_views(now),
            host_cache=self._host_cache_sets(),
            node_pending_load_bytes=pending,
            link_bandwidth=dict(self._link_bw))

    def _load_views(self, now: float) -> dict[str, LoadView]:
        """Per-model LoadViews; a model's view object is reused while its five numbers stay the same.
        avg_inflight is the time-average over the load window. Only models busy now or inside the
        window, or whose instance counts changed, are recomputed: a model idle through the whole
        window has in-flight 0 and average exactly 0.0 (its area did not move since the oldest sample)."""
        memo, out = self._load_memo, self._load_cache
        inflight, area, area_t, held, pend, live = (self.inflight, self.area, self.area_t, self.held,
                                                     self.pending_start, self.live)
        if self.load_samples:
            t0 = self.load_samples[0][0]
            span = now - t0
        else:
            t0, span = now, 0.0
        todo = self._load_active | self._load_dirty if self._load_dirty else self._load_active
        self._load_dirty = set()
        done = []
        for m in todo:
            n = inflight[m]
            if span <= 0:
                avg = float(n)
            else:
                avg = (area[m] + n * (now - area_t[m]) - self._area_at_oldest(m)) / span
            key = (n, avg, len(held[m]), live[m], pend[m])
            hit = memo.get(m)
            if hit is None or hit[0] != key:
                hit = memo[m] = (key, LoadView(*key))
            out[m] = hit[1]
            if n == 0 and area_t[m] <= t0:
                done.append(m)
        self._load_active.difference_update(done)
        return dict(out)  # in model order: every key was set in __init__

    def _area_at_oldest(self, m: str) -> float:
        return self.load_samples[0][1][m]

    # ---- load tracking --------------------------------------------------------------------------
    def _bump(self, model: str, delta: int) -> None:
        now = self.env.now
        n = self.inflight[model]
        self.area[model] += n * (now - self.area_t[model])
        self.area_t[model] = now
        if n == 0:
            self._wakes[model].append((now, self.area[model]))
        n = self.inflight[model] = n + delta
        if n:
            self._busy.add(model)
        else:
            self._busy.discard(model)
        self._load_active.add(model)
        if n > self.window_peak[model]:
            self.window_peak[model] = n

    def _area_now(self, model: str, now: float) -> float:
        return self.area[model] + self.inflight[model] * (now - self.area_t[model])

    def _sample_load(self) -> None:
        """Record the load areas of the models busy now (an idle model's area is recovered from its
        next 0 -> 1 change, :meth:`_area_at_oldest`); drop samples older than the load window."""
        now = self.env.now
        self.load_samples.append((now, _Areas(self, now, {m: self._area_now(m, now) for m in self._busy})))
        samples = self.load_samples
        while len(samples) > 1 and samples[1][0] <= now - self.spec.load_window_s:
            samples.popleft()
        t0 = samples[0][0]
        for m in self._load_active:  # forget 0 -> 1 changes before the oldest sample
            w = self._wakes[m]
            while w and w[0][0] < t0:
                w.popleft()

    def _gpu_busy_delta(self, delta: int) -> None:
        now = self.env.now
        self.gpu_busy_area += self.gpus_busy * (now - self.gpu_busy_t)
        self.gpu_busy_t = now
        self.gpus_busy += delta

    # ---- callbacks from engines and instances -----------------------------------------------------
    def on_first_token(self, rid: int, t: float) -> None:
        self.recorder.first(rid, t)

    def on_complete(self, rid: int, t: float) -> None:
        self.recorder.complete(rid, t)
        self._bump(self.order[self.workload.model[rid]], -1)
        self._check_finished()

    def on_drop(self, rid: int, reason: str) -> None:
        if self.recorder.status[rid] != PENDING:
            return
        self.recorder.drop(rid, self.env.now, reason)
        self._bump(self.order[self.workload.model[rid]], -1)
        self._check_finished()

    def on_preempt(self, rid: int) -> None:
        self.recorder.preemptions[rid] += 1

    def _check_finished(self) -> None:
        if self.arrivals_done and self.recorder.done == len(self.workload) and not self.finished.triggered:
            self.finished.succeed()

    def record_instance(self, inst: Instance) -> None:
        self.recorder.event(self.env.now, "instance", inst.id, inst.model.name, inst.gpus, inst.state,
                            inst.source)

    def on_instance_active(self, inst: Instance) -> None:
        if inst.counted_pending:
            inst.counted_pending = False
            self.pending_start[inst.model.name] -= 1
            self._load_dirty.add(inst.model.name)
        self._route_held(inst.model.name)

    def on_instance_draining(self, inst: Instance) -> None:
        """With ``keep_weights_on_stop``, the draining instance's weights are announced at once as a
        replica that becomes ready when the instance stops, so placement counts them instead of
        loading another copy. Its memory is still the instance's until then; its GPUs stay busy."""
        if not self.bundle.keep_weights_on_stop or inst.compute_share < 1.0:
            return
        if any(self.replicas[r].model.name == inst.model.name for g in inst.gpus for r in self.cluster.gpus[g].replicas):
            return
        rep = Replica(self.env, self._new_id(), inst.model, inst.gpus)
        for g in inst.gpus:
            self.cluster.gpus[g].replicas.add(rep.id)
            self._gpu_changed(g)
        self.replicas[rep.id] = rep
        self._replicas_changed()
        inst.successor = rep
        self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "pending",
                            f"kept from instance {inst.id}")

    def on_instance_stopped(self, inst: Instance) -> None:
        inst.state = STOPPED
        self.record_instance(inst)
        for g in inst.gpus:
            self.cluster.gpus[g].instances.discard(inst.id)
            self._gpu_changed(g)
        inst.release_memory()
        self._gpu_busy_delta(-sum(1 for g in inst.gpus if not self.cluster.gpus[g].instances))
        rep = inst.successor
        if rep is not None and not rep.evicted:
            for g in rep.gpus:
                self.cluster.gpus[g].mem.set(PREWARM, rep.id, rep.model.shard_bytes)
            rep.ready.succeed()
            self._replicas_changed()
            self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "ready", "kept")
        del self.instances[inst.id]
        del self._inst_views[inst.id]
        self._inst_tuple = None
        del self.by_model[inst.model.name][inst.id]

    def step_slowdown(self, inst: Instance, phase: str, batch: int, tokens: int | None = None) -> float:
        """Step-time factor of one ``phase`` step of ``batch`` sequences (``tokens`` in a prefill): on a shared GPU, the
        bundle's sharing model given the share and the co-located engines mid-step now (an idle
        neighbour costs nothing); times the interference of a background copy onto its GPUs."""
        f = 1.0
        if inst.compute_share < 1.0:
            busy = {i for g in inst.gpus for i in self.cluster.gpus[g].instances
                    if i != inst.id and self.instances[i].engine.busy}
            f = self.bundle.sharing.factor(phase, inst.compute_share, batch, len(busy), tokens=tokens)
        if any(self.cluster.gpus[g].background_flows for g in inst.gpus):
            f *= 1.0 + self.cost.interference().compute_slowdown
        return f

    def _on_mem_change(self, mem) -> None:
        self._gpu_dirty.add(mem.gpu)
        self._gpu_tuple = None
        self.recorder.mem(self.env.now, mem.gpu, mem.used_bytes, mem.kind_bytes(PREWARM), mem.kind_bytes(KV))

    # ---- weight movement --------------------------------------------------------------------------
    def load_weights(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, background=False,
                     replica: Replica | None = None, peer: Instance | None = None):
        """Move one shard of ``model`` onto each of ``gpus`` from ``source`` (a generator to yield from).

        From a ``peer`` instance, shard ``i`` comes from the peer's GPU ``i``; the peer keeps its
        weights (and its GPUs) until the copy ends, and its GPUs count a copy in progress.
        """
        if source == "prewarmed" or (replica is not None and replica.evicted):
            return
        if peer is not None:
            yield from self._load_from_peer(model, gpus, source, tag, peer)
            return
        node = self.cluster.nodes[self.cluster.gpus[gpus[0]].node]
        if source in ("host_pinned", "host_pageable") and model.name not in node.host_cache:
            raise PlanError(f"{tag}: {model.name} is not in node {node.idx}'s host cache")
        flows = []
        for g in gpus:
            links, cap = self.cluster.path(source, g)
            if background and self.cluster.gpus[g].instances:
                cap = min(cap, links[-1].capacity * (1.0 - self.cost.interference().copy_slowdown))
            flows.append(self.cluster.net.transfer(model.shard_bytes, links, tag, cap))
            if background:
                self.cluster.gpus[g].background_flows += 1
        if replica is not None:
            replica.flows = flows
        try:
            yield self.env.all_of([f.done for f in flows])
        finally:
            # (After an eviction cancelled the copy, evict() already released the GPUs; this
            # generator then never resumes and only closes when garbage-collected.)
            if background and not (replica is not None and replica.copy_released):
                for g in gpus:
                    self.cluster.gpus[g].background_flows -= 1
        node.host_cache.touch(model.name, model.weight_bytes)

    def _load_from_peer(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, peer: Instance):
        flows = []
        for g, p in zip(gpus, peer.gpus):
            links, cap = self.cluster.path(source, g, peer_gpu=p)
            flows.append(self.cluster.net.transfer(model.shard_bytes, links, tag, cap))
        for p in peer.gpus:
            self.cluster.gpus[p].background_flows += 1  # the copy reads the serving GPUs' HBM
        try:
            yield self.env.all_of([f.done for f in flows])
        finally:
            for p in peer.gpus:
                self.cluster.gpus[p].background_flows -= 1

    # ---- replicas -------------------------------------------------------------------------------
    def _model_on_gpu(self, model: str, g: int) -> bool:
        gpu = self.cluster.gpus[g]
        return any(self.replicas[r].model.name == model for r in gpu.replicas) or \
            any(self.instances[i].model.name == model for i in gpu.instances)

    def _add_replica(self, model: ServedModel, gpus: tuple[int, ...]) -> Replica:
        rep = Replica(self.env, self._new_id(), model, gpus)
        for g in gpus:
            self.cluster.gpus[g].mem.set(PREWARM, rep.id, model.shard_bytes)
            self.cluster.gpus[g].replicas.add(rep.id)
            self._gpu_changed(g)
        self.replicas[rep.id] = rep
        self._replicas_changed()
        return rep

    def apply_prewarm(self, p: Prewarm) -> None:
        model = self._check_group(p.model, p.gpus, "Prewarm")
        if p.source in PEER_SOURCES:
            raise PlanError(f"Prewarm {p.model}: prewarming from a peer instance ({p.source}) is not modelled")
        for g in p.gpus:
            # (A GPU serving the same model may take a replica, as the authors' code allows.)
            if any(self.replicas[r].model.name == p.model for r in self.cluster.gpus[g].replicas):
                raise PlanError(f"Prewarm {p.model} on GPU {g}: that GPU already holds a replica of {p.model}")
            if not self.cluster.gpus[g].mem.fits(model.shard_bytes, PREWARM, None):
                raise PlanError(f"Prewarm {p.model} on GPU {g}: needs {model.shard_bytes} B, "
                                f"{self.cluster.gpus[g].mem.free_bytes} B free")
        rep = self._add_replica(model, p.gpus)
        self.counters[p.model]["prewarms"] += 1
        self.recorder.event(self.env.now, "replica", rep.id, p.model, p.gpus, "loading", p.source)
        self.env.process(self._prewarm_load(rep, p.source))

    def _prewarm_load(self, rep: Replica, source: str):
        yield from self.load_weights(rep.model, rep.gpus, source, ("replica", rep.id), background=True, replica=rep)
        if not rep.evicted and rep.id in self.replicas:
            rep.ready.succeed()
            self._replicas_changed()
            self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "ready")

    def evict(self, rid: int, why: str = "") -> float:
        """Drop replica ``rid``; returns the bytes freed per GPU."""
        rep = self.replicas.get(rid)
        if rep is None:
            raise PlanError(f"Evict: no replica {rid}")
        if rep.adopter is not None:
            raise PlanError(f"Evict: replica {rid} is being taken over by instance {rep.adopter}")
        del self.replicas[rid]
        self._replicas_changed()
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
                self.cluster.gpus[g].background_flows -= 1
        for g in rep.gpus:
            self.cluster.gpus[g].mem.release(PREWARM, rep.id)
            self.cluster.gpus[g].replicas.discard(rep.id)
            self._gpu_changed(g)
        self.counters[rep.model.name]["evictions"] += 1
        self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "evicted", why)
        return rep.model.shard_bytes

    def adopt_replica(self, inst: Instance) -> None:
        rep = inst.replica
        for g in rep.gpus:
            mem = self.cluster.gpus[g].mem
            mem.release(PREWARM, rep.id)
            mem.set(WEIGHTS, inst.id, inst.model.shard_bytes)
            self.cluster.gpus[g].replicas.discard(rep.id)
            self._gpu_changed(g)
        self.replicas.pop(rep.id, None)
        self._replicas_changed()
        self.recorder.event(self.env.now, "replica", rep.id, rep.model.name, rep.gpus, "activated", f"instance {inst.id}")

    # ---- plan checks ----------------------------------------------------------------------------
    def _check_group(self, model_name: str, gpus: tuple[int, ...], what: str, tp: int | None = None) -> ServedModel:
        model = self.models.get(model_name)
        if model is None:
            raise PlanError(f"{what}: unknown model {model_name}")
        if tp is not None and tp != model.tp:
            if tp < 1 or model.shape.heads % tp:
                raise PlanError(f"{what} {model_name}: tp {tp} does not divide its {model.shape.heads} heads")
            key = (model_name, tp)
            if key not in self._tp_variants:
                self._tp_variants[key] = ServedModel(model.name, model.shape, tp)
            model = self._tp_variants[key]
        if len(gpus) != model.tp or len(set(gpus)) != len(gpus):
            raise PlanError(f"{what} {model_name}: needs {model.tp} distinct GPUs, got {gpus}")
        if any(g < 0 or g >= len(self.cluster.gpus) for g in gpus):
            raise PlanError(f"{what} {model_name}: GPU id out of range in {gpus}")
        if len({self.cluster.gpus[g].node for g in gpus}) != 1:
            raise PlanError(f"{what} {model_name}: TP group {gpus} spans nodes")
        return model

    # ---- instances ------------------------------------------------------------------------------
    def apply_activate(self, act: Activate, ready_at_start: bool = False) -> Instance:
        """Verify and apply an activation: evictions, memory, the instance's lifecycle process."""
        model = self._check_group(act.model, act.gpus, "Activate", act.tp)
        shared = act.compute_share < 1.0
        for g in act.gpus:
            gpu = self.cluster.gpus[g]
            if gpu.instances and not shared:
                raise PlanError(f"Activate {act.model}: GPU {g} already serves instances {sorted(gpu.instances)}")
            if shared and sum(self.instances[i].compute_share for i in gpu.instances) + act.compute_share > 1.0 + 1e-9:
                raise PlanError(f"Activate {act.model}: compute shares on GPU {g} would exceed 1")
        peer = self._check_peer(act, model) if act.replica is None else None
        rep = None
        if act.replica is not None:
            rep = self.replicas.get(act.replica)
            if rep is None or rep.model.name != act.model or tuple(sorted(rep.gpus)) != tuple(sorted(act.gpus)):
                raise PlanError(f"Activate {act.model}: replica {act.replica} is not {act.model} on {act.gpus}")
            if rep.adopter is not None:
                raise PlanError(f"Activate {act.model}: replica {act.replica} is already taken by instance {rep.adopter}")
        freed = 0
        if self.bundle.evict_on_activate:
            victims = sorted({r for g in act.gpus for r in self.cluster.gpus[g].replicas} - {act.replica})
            for r in victims:
                freed += self.evict(r, f"activation of {act.model}")
        inst_id = self._new_id()
        if act.kv_bytes_per_gpu is not None:
            kv = act.kv_bytes_per_gpu
        else:
            free = min(self.cluster.gpus[g].mem.free_bytes for g in act.gpus)
            kv = free - (0 if rep is not None else model.shard_bytes)
        block_bytes = self.engine_spec.block_size * model.kv_bytes_per_token_per_gpu
        if kv < block_bytes:
            raise PlanError(f"Activate {act.model} on {act.gpus}: no room for KV cache after weights")
        kv = (kv // block_bytes) * block_bytes
        inst = Instance(self, inst_id, model, tuple(act.gpus), act.source if rep is None else "prewarmed",
                        replica=rep, compute_share=act.compute_share, kv_bytes_per_gpu=kv,
                        ready_at_start=ready_at_start, peer=peer, max_num_seqs=act.max_num_seqs)
        if rep is not None:
            rep.adopter = inst_id
        if self.bundle.memswitch == "free_malloc":
            inst.sync_free_s = self.cost.free_s(freed) if freed else 0.0
        inst.commit_memory()
        self._gpu_busy_delta(sum(1 for g in act.gpus if not self.cluster.gpus[g].instances))
        for g in act.gpus:
            self.cluster.gpus[g].instances.add(inst_id)
            self._gpu_changed(g)
        self.instances[inst_id] = inst
        self._inst_views[inst_id] = inst.view()
        self._inst_tuple = None
        self.live[act.model] += 1
        self._load_dirty.add(act.model)
        self.by_model[act.model][inst_id] = inst
        self.recorder.gpus_of_instance[inst_id] = ",".join(map(str, act.gpus))
        c = self.counters[act.model]
        if not ready_at_start:
            c["instance_starts"] += 1
            self.pending_start[act.model] += 1
            inst.counted_pending = True
            self._load_dirty.add(act.model)
            if rep is None:
                c["cold_starts"] += 1
            elif rep.ready.triggered:
                c["prewarm_hits"] += 1
            else:
                c["prewarm_hits_loading"] += 1
        self.env.process(inst.lifecycle())
        return inst

    def _check_peer(self, act: Activate, model: ServedModel) -> Instance | None:
        """The running instance a peer-sourced activation copies from (``None`` for other sources)."""
        if act.source not in PEER_SOURCES:
            if act.peer is not None:
                raise PlanError(f"Activate {act.model}: a peer instance is given but the source is {act.source}")
            return None
        peer = self.instances.get(act.peer) if act.peer is not None else None
        if peer is None or peer.model.name != act.model:
            raise PlanError(f"Activate {act.model} from {act.source}: peer {act.peer} is not a live instance of "
                            f"{act.model}")
        if peer.state not in (ACTIVE, DRAINING) or peer.compute_share < 1.0:
            raise PlanError(f"Activate {act.model} from {act.source}: peer {act.peer} is {peer.state}, "
                            "not a running instance that holds its weights")
        same_node = self.cluster.gpus[peer.gpus[0]].node == self.cluster.gpus[act.gpus[0]].node
        if same_node != (act.source == "peer_nvlink"):
            hint = "the same node: use peer_nvlink" if same_node else "another node: use peer_rdma"
            raise PlanError(f"Activate {act.model} on {act.gpus} from {act.source}: peer {act.peer} is on GPUs "
                            f"{peer.gpus} ({hint})")
        return peer

    def try_start(self, model: str) -> bool:
        if self.bundle.activator is None:
            return False
        act = self.bundle.activator.choose(self.snapshot(), model)
        if act is None:
            return False
        if act.model != model:
            raise PlanError(f"activator asked for {model} returned a plan for {act.model}")
        self.apply_activate(act)
        return True

    # ---- routing --------------------------------------------------------------------------------
    def _views(self, model: str):
        return [i.view() for i in self.by_model[model].values() if i.state in LIVE_STATES]

    def _route(self, rid: int, model: str) -> bool:
        iid = self.bundle.router.route(model, self._views(model))
        if iid is None:
            return False
        inst = self.instances.get(iid)
        if inst is None or inst.model.name != model or inst.state not in LIVE_STATES:
            raise PlanError(f"router sent a {model} request to instance {iid}, which cannot take it")
        inst.submit(rid)
        return True

    def _route_held(self, model: str) -> None:
        q = self.held[model]
        while q and self._route(q[0], model):
            q.popleft()

    def _arrivals(self):
        w = self.workload
        env = self.env
        for rid in range(len(w)):
            t = w.arrival_s[rid]
            if t > env.now:
                yield env.timeout(t - env.now)
            model = self.order[w.model[rid]]
            self._bump(model, +1)
            if w.prompt_tokens[rid] + w.output_tokens[rid] > self.max_len[model]:
                self.on_drop(rid, "exceeds_max_model_len")
                continue
            if self.held[model] or not self._route(rid, model):
                self.held[model].append(rid)
                if self.bundle.scale_on_miss and self.pending_start[model] == 0:
                    self.try_start(model)
                    self._route_held(model)
            if self.progress is not None and rid % 1000 == 0:
                self.progress(rid)
        self.arrivals_done = True
        self._check_finished()

    def _retry_loop(self):
        while True:
            yield self.env.timeout(self.spec.retry_s)
            now = self.env.now
            for m in self.order:
                q = self.held[m]
                while q and now - self.workload.arrival_s[q[0]] > self.spec.request_timeout_s:
                    self.on_drop(q.popleft(), "timeout_waiting_for_instance")
                if q:
                    self._route_held(m)
                    if q and self.bundle.scale_on_miss and self.pending_start[m] == 0:
                        self.try_start(m)
                        self._route_held(m)

    def _control_loop(self):
        scaler = self.bundle.autoscaler
        while True:
            yield self.env.timeout(scaler.period_s)
            self._sample_load()
            decision = scaler.decide(self.snapshot())
            for iid in decision.stop:
                inst = self.instances.get(iid)
                if inst is None or inst.state != ACTIVE:
                    raise PlanError(f"autoscaler stopped instance {iid}, which is not active")
                inst.drain()
            for model in sorted(decision.start):
                for _ in range(int(decision.start[model])):
                    if not self.try_start(model):
                        break
                self._route_held(model)

    def _sample_loop(self):
        while True:
            yield self.env.timeout(self.spec.load_window_s / 10)
            self._sample_load()

    # ---- prewarming -----------------------------------------------------------------------------
    def _window_loop(self):
        pred = self.bundle.predictor
        w = 0
        starts = {m: 0.0 for m in self.order}
        while True:
            yield self.env.timeout(pred.window_s)
            now = self.env.now
            for m in self.order:
                area = self._area_now(m, now)
                avg = (area - starts[m]) / pred.window_s
                starts[m] = area
                p_avg, p_peak = pred.predict(m, w)
                self.prediction_log.append((m, w, p_avg, p_peak, avg, float(self.window_peak[m])))
                pred.observe(m, w, avg, float(self.window_peak[m]))
                self.window_peak[m] = self.inflight[m]
            self._obs_version += 1
            w += 1

    def _placer_loop(self):
        placer, pred = self.bundle.placer, self.bundle.predictor
        key, cached = None, {m: (0.0, 0.0) for m in self.order}
        while True:
            # A prediction changes only with the window asked for and the observations made: ask
            # the predictor once per (window, observation count), not at every tick.
            window = int(self.env.now // pred.window_s) if pred is not None else 0
            if pred is not None and key != (window, self._obs_version):
                key = (window, self._obs_version)
                cached = {m: pred.predict(m, window) for m in self.order}
            preds = dict(cached)
            for action in placer.plan(self.snapshot(), preds):
                if isinstance(action, Prewarm):
                    self.apply_prewarm(action)
                elif isinstance(action, Evict):
                    self.evict(action.replica, "placement")
                else:
                    raise PlanError(f"placer returned {action!r}")
            yield self.env.timeout(placer.period_s)

    def _kv_loop(self):
        """WarmServe's KV reservation (warmserve.md section 5): each period the bundle's policy says
        how many free KV blocks of each engine to lend to the GPU pool, or to take back."""
        policy = self.bundle.kv_policy
        dirty = self._kv_dirty
        while True:
            yield self.env.timeout(policy.period_s)
            # The policy is a pure function of an engine's block counts: an engine untouched since
            # its last step that changed nothing (its freed count then 0) would get the same no-op.
            todo = sorted(dirty)  # instance ids grow with creation: the order of self.instances
            dirty.clear()
            for iid in todo:
                inst = self.instances.get(iid)
                if inst is None or inst.state != ACTIVE or inst.compute_share < 1.0:
                    continue
                e = inst.engine
                step = policy.step(e.total_blocks, e.inflight, e.free_blocks, e.reserved, e.take_freed())
                if step.reserve > 0:
                    self._set_reserved(inst, e.reserved + step.reserve)
                elif step.give_back > 0:
                    self.reclaim_kv(inst, step.give_back)

    def _set_reserved(self, inst: Instance, blocks: int) -> None:
        e = inst.engine
        e.reserved = blocks
        self._kv_dirty.add(inst.id)
        kv_bytes = (e.total_blocks - e.reserved) * inst.block_bytes
        for g in inst.gpus:
            self.cluster.gpus[g].mem.set(KV, inst.id, kv_bytes)

    def reclaim_kv(self, inst: Instance, blocks: int) -> None:
        """Take back up to ``blocks`` reserved KV blocks, evicting prewarmed replicas if needed."""
        e = inst.engine
        blocks = min(blocks, e.reserved)
        need = blocks * inst.block_bytes
        for g in inst.gpus:
            gpu = self.cluster.gpus[g]
            for r in sorted(gpu.replicas, key=lambda r: -self.replicas[r].created):
                if gpu.mem.free_bytes >= need:
                    break
                self.evict(r, f"KV reclaimed by instance {inst.id}")
        room = min(self.cluster.gpus[g].mem.free_bytes for g in inst.gpus) // inst.block_bytes
        self._set_reserved(inst, e.reserved - min(blocks, room))

    # ---- run ------------------------------------------------------------------------------------
    def _initial(self):
        b = self.bundle
        if b.initial is None:
            return
        rates = {m: float(np.sum(self.workload.model == j)) / max(self.workload.duration_s, 1e-9)
                 for j, m in enumerate(self.order)}
        for act in b.initial.place(self.snapshot(), rates):
            inst = self.apply_activate(act, ready_at_start=True)
            cap = f", max_num_seqs {act.max_num_seqs}" if act.max_num_seqs is not None else ""
            self.initial_lines.append(f"{act.model} on GPUs {list(inst.gpus)} (tp {inst.model.tp}, compute share "
                                      f"{inst.compute_share:.3f}, KV {inst.kv_bytes_per_gpu / 2**30:.1f} GiB/GPU{cap})")

    def run(self) -> Recorder:
        """Replay the whole workload; every request ends completed or dropped with a reason."""
        env = self.env
        self._initial()
        for inst in list(self.instances.values()):
            self.record_instance(inst)
        env.process(self._arrivals())
        env.process(self._retry_loop())
        if self.bundle.autoscaler is not None:
            env.process(self._control_loop())
        env.process(self._sample_loop())
        if self.bundle.predictor is not None:
            env.process(self._window_loop())
        if self.bundle.placer is not None:
            env.process(self._placer_loop())
        if self.bundle.kv_policy is not None:
            env.process(self._kv_loop())
        horizon = self.workload.duration_s + self.spec.drain_s
        if len(self.workload) == 0:
            self.arrivals_done = True
        else:
            env.run(until=env.any_of([self.finished, env.timeout(horizon)]))
        self.end_s = env.now
        self.events = next(env._eid)  # events SimPy scheduled in the run (its event-id counter)
        for rid in np.flatnonzero(self.recorder.status == PENDING):
            self.on_drop(int(rid), "unfinished_at_end")
        self._gpu_busy_delta(0)
        for m in self.order:
            self.area[m] = self._area_now(m, env.now)
            self.area_t[m] = env.now
        return self.recorder
