"""Prism (arXiv 2505.04021; research prototype ``Multi-LLM/prism-research`` @692f94f, read through
``LiRongchuan/Prism``): several models share each GPU, placed by KV pressure; idle models are
deactivated and re-activated on demand from CPU memory (time-sharing), active ones share GPUs with
elastic KV memory (space-sharing).

The elastic KV memory is the simulator's ``kv_balloon`` mechanism (``sim/mechanisms/balloon.py``);
here are the decisions: the placement at the start, the global scheduler's rounds, where an inactive
model is activated, and how co-located engines slow each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from warmsim.policies.types import ACTIVE, Activate, ScaleDecision, Snapshot
from warmsim.sim.cost import check_source
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import bounded, count, nonneg, positive, text


def _check(workers_per_gpu: int, min_kv_tokens: int, source: str, what: str) -> None:
    if workers_per_gpu < 1:
        raise UserError(f"{what}.workers_per_gpu must be >= 1, got {workers_per_gpu}")
    if min_kv_tokens < 1:
        raise UserError(f"{what}.min_kv_tokens must be >= 1, got {min_kv_tokens}")
    check_source(source, f"{what}.source")


def _room(snap: Snapshot, model: str, min_kv_tokens: int) -> int:
    """Per-GPU bytes one engine of ``model`` needs: its shard and ``min_kv_tokens`` of KV."""
    mv = snap.models[model]
    return mv.shard_bytes + min_kv_tokens * mv.kv_bytes_per_token // mv.tp


@dataclass(frozen=True)
@bounded(workers_per_gpu=count("model engines one GPU may hold", 1024),
         slo_s=positive("TTFT SLO of the pressure score, seconds", 3600),
         min_kv_tokens=count("KV tokens a placed engine must be able to hold", 10_000_000, lo=0),
         source=text("where new engines load weights from (a storage tier, sim/sources/)"))
class KVPressurePlacer:
    """Prism's placement (v2 Algorithm 1, as summarised by the authors' ADRS post and baseline code):
    ``w = rate / slo`` per model; a GPU's KV pressure ``KVPR = sum(w) / (GPU memory - sum(weights))``
    over the models on it. Models in decreasing ``w`` (ties: name) each go to the TP group (``tp``
    GPUs of one node) with the lowest KV pressure (the group's largest; ties: lowest node, then GPU
    ids) that has room for the shard and ``min_kv_tokens`` of KV and fewer than ``workers_per_gpu``
    engines on each GPU. Models with no expected requests start inactive."""

    #: Engines per GPU (``--workers-per-gpu 4`` in the prototype's README); also sets each engine's
    #: compute-share bookkeeping (``1 / workers_per_gpu``): Prism does not partition compute.
    workers_per_gpu: int = 4
    #: The TTFT SLO in ``w`` (the same for every model here, so ``w`` orders by rate).
    slo_s: float = 1.0
    #: KV a placed engine must have room for [ours: one full-length sequence, as MuxServe's placer].
    min_kv_tokens: int = 2048
    #: Where activated weights come from: CPU shared memory (``model.share_memory()``), pageable.
    source: str = "host_pageable"

    def __post_init__(self) -> None:
        _check(self.workers_per_gpu, self.min_kv_tokens, self.source, "KVPressurePlacer")

    def place(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[Activate]:
        weights = [g.capacity_bytes - g.free_bytes for g in snap.gpus]
        wsum = [0.0] * len(snap.gpus)
        count = [len(g.instances) for g in snap.gpus]
        out = []
        order = sorted((m for m in snap.models if expected_rate.get(m, 0.0) > 0),
                       key=lambda m: (-expected_rate[m] / self.slo_s, m))
        for m in order:
            mv = snap.models[m]
            need = _room(snap, m, self.min_kv_tokens)
            best = None
            for n in range(snap.n_nodes):
                ok = [g for g in snap.node_gpus(n) if not snap.gpu(g).failed and count[g] < self.workers_per_gpu
                      and snap.gpu(g).capacity_bytes - weights[g] >= need]
                if len(ok) < mv.tp:
                    continue

                def kvpr(g: int) -> float:
                    return wsum[g] / max(1, snap.gpu(g).capacity_bytes - weights[g])

                grp = sorted(ok, key=lambda g: (kvpr(g), g))[:mv.tp]
                key = (max(kvpr(g) for g in grp), n, sorted(grp))
                if best is None or key < best:
                    best = key
            if best is None:
                continue
            chosen = tuple(best[2])
            for g in chosen:
                weights[g] += mv.shard_bytes
                wsum[g] += expected_rate[m] / self.slo_s
                count[g] += 1
            out.append(Activate(m, chosen, source=self.source, compute_share=1.0 / self.workers_per_gpu))
        return out


@dataclass
@bounded(period_s=positive("scheduler period, seconds", 86400),
         idle_s=nonneg("an engine idle this long is deactivated, seconds", 1e7))
class PrismScheduler:
    """Prism's global scheduler (``SimpleGlobalPolicy.gen_actions``), every ``period_s``: deactivate
    an active model with no request in flight whose last request ended ``idle_s`` ago or more; ask
    for one instance of every model with requests and no live instance (activation). One engine per
    model: no scale-out, as in the prototype. Migrations between GPUs are not modelled."""

    #: Seconds between rounds (``controller_global.py`` ``SCHEDULE_INTERVAL = 5``).
    period_s: float = 5.0
    #: Idle time before deactivation (``MODEL_IDLE_THRESHOLD = 50``; the fork later uses 5).
    idle_s: float = 50.0

    def __post_init__(self) -> None:
        if not self.period_s > 0 or not self.idle_s >= 0:
            raise UserError(f"PrismScheduler: period_s must be > 0 and idle_s >= 0, got {self.period_s}, {self.idle_s}")

    def decide(self, snap: Snapshot) -> ScaleDecision:
        live = snap.live_by_model()
        start, stop = {}, []
        for name, lv in snap.load.items():
            insts = live.get(name, [])
            if not insts:
                if lv.waiting or lv.inflight:
                    start[name] = 1
                continue
            if lv.waiting or lv.inflight:
                continue
            for i in insts:
                if i.state == ACTIVE and i.idle_since is not None and snap.time_s - i.idle_since >= self.idle_s:
                    stop.append(i.id)
        return ScaleDecision(start=start, stop=tuple(sorted(stop)))


@dataclass(frozen=True)
@bounded(workers_per_gpu=count("model engines one GPU may hold", 1024),
         min_kv_tokens=count("KV tokens an activated engine must be able to hold", 10_000_000, lo=0),
         source=text("where activated engines load weights from (a storage tier, sim/sources/)"),
         cluster_bytes=nonneg("bytes of the shared-memory cache an activation reads from", 1e15))
class PrismActivator:
    """Where an inactive model is activated (``_place_inactive_model`` after ``_prepare_gpu_clusters``):
    GPUs with room for the model's shard and ``min_kv_tokens`` of KV and fewer than ``workers_per_gpu``
    engines, grouped by free memory (a group holds GPUs within 5 GB of its largest, groups in
    decreasing free memory); in the first group with room, the GPU whose resident requests have the
    most time left before their SLO, taken here as the fewest requests in flight on it (the snapshot
    has no deadlines) [ours], then the lowest id. A TP group takes the ``tp`` best GPUs of one node."""

    workers_per_gpu: int = 4
    min_kv_tokens: int = 2048
    source: str = "host_pageable"
    #: Free-memory grouping threshold, bytes (``_prepare_gpu_clusters``: 5 GB).
    cluster_bytes: float = 5e9

    def __post_init__(self) -> None:
        _check(self.workers_per_gpu, self.min_kv_tokens, self.source, "PrismActivator")

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        mv = snap.models[model]
        need = _room(snap, model, self.min_kv_tokens)
        ok = [g for g in snap.gpus if not g.failed and len(g.instances) < self.workers_per_gpu and g.free_bytes >= need]
        if not ok:
            return None
        inflight: dict[int, int] = defaultdict(int)
        for inst in snap.instances:
            for gid in inst.gpus:
                inflight[gid] += inst.inflight
        rank, top, idx = {}, None, -1
        for g in sorted(ok, key=lambda g: (-g.free_bytes, g.id)):
            if top is None or top - g.free_bytes > self.cluster_bytes:
                top, idx = g.free_bytes, idx + 1
            rank[g.id] = idx
        best = None
        for n in range(snap.n_nodes):
            here = sorted((g.id for g in ok if g.node == n), key=lambda g: (rank[g], inflight[g], g))[:mv.tp]
            if len(here) < mv.tp:
                continue
            key = (max((rank[g], inflight[g]) for g in here), n)
            if best is None or key < best[0]:
                best = (key, tuple(sorted(here)))
        if best is None:
            return None
        return Activate(model, best[1], source=self.source, compute_share=1.0 / self.workers_per_gpu)


@dataclass(frozen=True)
@bounded(contention=nonneg("slowdown factor per busy co-located engine", 100))
class TimeSlicing:
    """Co-located engines without compute partitioning: a step slows by ``1 + contention`` per
    neighbour busy with a step of its own (the GPU time-slices between processes that have work; an
    idle neighbour costs nothing). ``share`` is bookkeeping only. ``contention = 1`` is plain
    time-slicing [ours: Prism publishes no interference measurement]."""

    contention: float = 1.0

    def factor(self, phase: str, share: float, batch: int, busy_neighbours: int = 0, *,
               tokens: int | None = None) -> float:
        return 1.0 + self.contention * busy_neighbours
