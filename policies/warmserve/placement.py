"""Where prewarmed replicas go (warmserve.md section 4).

:class:`EvictAwarePlacer` is WarmServe's placement, following the authors' artifact; it never
evicts. :class:`RoundRobinPlacer` is the "no placement" ablation. Both implement
:class:`warmsim.policies.base.PrewarmPlacer`: the simulator calls ``plan(snap, predictions)`` every
``period_s`` with the predicted (avg, peak) in-flight load of every model for the current window,
and applies the returned :class:`warmsim.policies.types.Prewarm` actions in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from warmsim.policies.types import LIVE_STATES, Evict, ModelView, Prewarm, Snapshot
from warmsim.policies.warmserve.groups import ReplicaTable, choose_group, mask_members, scan_groups, subset_masks
from warmsim.policies.warmserve.scores import replica_demand, replica_scores
from warmsim.sim.cost import check_source
from warmsim.sim.knobs import bounded, choice, count, flag, nonneg, period, positive, text
from warmsim.sim.models import CHUNK_BYTES, align_up


def shard_need(model: ModelView, chunk_bytes: int) -> int:
    """Bytes a replica of ``model`` needs on each of its GPUs: ``align_up(ceil(size / tp), chunk)``."""
    return align_up(-(-model.weight_bytes // model.tp), chunk_bytes)


def running_instances(snap: Snapshot) -> Counter:
    """Live instances (starting .. active) per model."""
    return Counter(i.model for i in snap.instances if i.state in LIVE_STATES)


def registered_running(snap: Snapshot) -> list:
    """The live instances whose weights the artifact keeps registered as replicas of their model (all
    of them: a hit's replica stays in ``node_models``, a miss's load adds one)."""
    return [i for i in snap.instances if i.state in LIVE_STATES]


def _replica_node(snap: Snapshot, gpus: tuple[int, ...], rid: int) -> int:
    nodes = {g // snap.gpus_per_node for g in gpus}
    if len(nodes) != 1 or not gpus or max(gpus) >= len(snap.gpus):
        raise ValueError(f"replica {rid} has GPUs {gpus} that are not inside one node")
    return nodes.pop()


@dataclass(frozen=True)
@bounded(period_s=period("placement period in seconds"),
         per_instance=count("B, requests per instance in the demand formula"),
         cold_bandwidth_gib_s=positive("bandwidth of the cold-start score in GiB/s", 1e6),
         source=text("weight source of prewarmed replicas (a storage tier)"),
         chunk_bytes=count("bytes of one memory chunk", 2**40),
         zero_avg_as=nonneg("average load assumed for a model predicted at 0", 1e6),
         count_running=flag("a live instance's weights count as a replica"))
class EvictAwarePlacer:
    """WarmServe's evict-aware placement of prewarmed replicas.

    One ``plan`` call: (1) per model, demand ``n_found``/``n_burst`` from the predicted load and
    its live instances; (2) replica scores (foundation then burst); existing replicas of the model
    (ready or loading, and with ``count_running`` the live instances' own weights, by ascending id)
    take the model's scores in order, extras score 0;
    the missing replicas become candidates, placed by descending score; (3) each candidate scans
    every ``tp``-GPU group inside one node whose GPUs each have ``free_bytes`` >= the aligned
    shard, under the nesting rules (see :mod:`warmsim.policies.warmserve.groups`); (4) it takes the group
    with the smallest overlapped score sum among those where it outranks every overlapped replica,
    else the smallest sum overall, else it is skipped; (5) committed candidates reduce the local
    free memory and join the local replica table, so later candidates in the same call see them.

    Args:
        period_s: how often the simulator calls ``plan`` (0.5 s).
        per_instance: requests one instance serves at once, ``B`` (32).
        cold_bandwidth_gib_s: GiB/s used to turn a shard size into the cold-start score (32).
        source: storage tier new replicas load from (a ``sim.cost.SOURCES`` name).
        chunk_bytes: memory granule the per-GPU shard is rounded up to (2 MiB).
        zero_avg_as: denominator of the burst factor ``peak / avg`` when ``avg`` is 0 (1 request).
        count_running: ``True`` (the artifact): a live instance's weights stay registered as a replica
            of its model and count among the existing replicas (taking a score slot and a place in the
            nesting table) although the demand already subtracted the instance, so a running instance
            counts twice (``CTRL/prewarm_manager.py`` ``create_engine`` removes only other models'
            replicas on a hit; ``CTRL/scheduler.py`` ``Scheduler.prewarm`` takes every ``node_models``
            entry as a replica). ``False``: only idle replicas count (warmsim's earlier reading).
    """

    period_s: float = 0.5
    per_instance: int = 32
    cold_bandwidth_gib_s: float = 32.0
    source: str = "host_pinned"
    chunk_bytes: int = CHUNK_BYTES
    zero_avg_as: float = 1.0
    count_running: bool = True

    def __post_init__(self) -> None:
        check_source(self.source, "EvictAwarePlacer.source")

    def _registered(self, snap: Snapshot) -> list:
        """The live instances counted as replicas (none unless ``count_running``)."""
        return registered_running(snap) if self.count_running else []

    def candidates(self, snap: Snapshot, predictions: Mapping[str, tuple[float, float]]
                   ) -> tuple[dict[int, float], list[tuple[float, str]]]:
        """Scores of existing replicas (by replica id, or instance id for a live instance counted as
        one) and new candidates ``(score, model)`` in placement order (descending score; ties by model
        name, then replica index)."""
        running = running_instances(snap)
        existing: dict[str, list[int]] = {}
        for r in snap.replicas:
            existing.setdefault(r.model, []).append(r.id)
        for i in self._registered(snap):  # ids come from one counter in the simulator
            existing.setdefault(i.model, []).append(i.id)
        replica_score: dict[int, float] = {}
        todo: list[tuple[float, str, int]] = []
        for name in sorted(snap.models):
            mv = snap.models[name]
            avg, peak = predictions.get(name, (0.0, 0.0))
            scores = replica_scores(avg, peak, running.get(name, 0), weight_bytes=mv.weight_bytes,
                                    tp=mv.tp, per_instance=self.per_instance,
                                    bandwidth_gib_s=self.cold_bandwidth_gib_s, zero_avg_as=self.zero_avg_as)
            ids = sorted(existing.get(name, ()))
            for k, rid in enumerate(ids):
                replica_score[rid] = scores[k] if k < len(scores) else 0.0
            todo.extend((scores[k], name, k) for k in range(len(ids), len(scores)))
        # Replicas of models the snapshot does not list still constrain placement, with score 0.
        for r in snap.replicas:
            replica_score.setdefault(r.id, 0.0)
        todo.sort(key=lambda t: (-t[0], t[1], t[2]))
        return replica_score, [(s, m) for s, m, _ in todo]

    def wants_more(self, snap: Snapshot, predictions: Mapping[str, tuple[float, float]]) -> bool:
        """Whether some model wants more replicas (``n_found + n_burst``) than it has, i.e. whether
        :meth:`candidates` has anything to place. Most ticks nothing is wanted; this answers that
        without scoring every model's replicas."""
        running = running_instances(snap)
        have = Counter(r.model for r in snap.replicas) + Counter(i.model for i in self._registered(snap))
        for name in snap.models:
            avg, peak = predictions.get(name, (0.0, 0.0))
            n_found, n_burst = replica_demand(avg, peak, running.get(name, 0), self.per_instance)
            if n_found + n_burst > have.get(name, 0):
                return True
        return False

    def plan(self, snap: Snapshot, predictions: Mapping[str, tuple[float, float]]) -> list[Prewarm | Evict]:
        """Prewarm actions for this tick (never an :class:`Evict`)."""
        g = snap.gpus_per_node
        n_nodes = snap.n_nodes
        replica_score, todo = self.candidates(snap, predictions)
        if not todo:
            return []
        held = [*snap.replicas, *self._registered(snap)]  # (replica or live instance: id, model, gpus)
        model_index = {name: i for i, name in enumerate(sorted({*snap.models, *(r.model for r in held)}))}
        free = np.array([gv.free_bytes for gv in snap.gpus], dtype=np.int64).reshape(n_nodes, g)
        per_node = Counter(_replica_node(snap, r.gpus, r.id) for r in held)
        table = ReplicaTable(n_nodes, g, slots=max(per_node.values(), default=1) + 2)
        for r in held:
            node = _replica_node(snap, r.gpus, r.id)
            mask = sum(1 << (x - node * g) for x in set(r.gpus))
            table.add(node, mask, len(set(r.gpus)), model_index[r.model], replica_score[r.id])

        masks_by_tp: dict[int, np.ndarray] = {}
        actions: list[Prewarm | Evict] = []
        # Committing only removes memory and adds replicas, so a model that found no group
        # finds none later in this call either: skip its remaining candidates (exact, and cheap
        # on a full cluster).
        stuck: set[str] = set()
        for score, name in todo:
            mv = snap.models[name]
            if mv.tp > g or name in stuck:
                continue
            need = shard_need(mv, self.chunk_bytes)
            if mv.tp not in masks_by_tp:
                masks_by_tp[mv.tp] = subset_masks(g, mv.tp)
            masks = masks_by_tp[mv.tp]
            scan = scan_groups(table, free, need, mv.tp, model_index[name], masks)
            pick = choose_group(scan, score)
            if pick is None:
                stuck.add(name)
                continue  # the artifact never evicts to make room
            node, k = pick
            mask = int(masks[k])
            local = mask_members(mask, g)
            free[node, list(local)] -= need
            table.add(node, mask, mv.tp, model_index[name], score)
            actions.append(Prewarm(name, tuple(node * g + j for j in local), self.source))
        return actions


@dataclass(frozen=True)
@bounded(period_s=period("placement period in seconds"),
         per_instance=count("B, requests per instance in the demand formula"),
         source=text("weight source of prewarmed replicas (a storage tier)"),
         chunk_bytes=count("bytes of one memory chunk", 2**40),
         exclude_same_model=flag("skip GPUs that hold the model already"),
         artifact_loop=flag("the artifact's loop: full demand every tick"),
         order=choice("model order", "config", "name"))
class RoundRobinPlacer:
    """The "no placement" ablation (the artifact's ``--disable-placement``): same demand, but
    replicas go round-robin over models onto the first GPUs with enough free memory, with no
    nesting logic and no scores.

    Each turn places one replica of the next model on the first node (by id) that has ``tp`` GPUs
    with ``free_bytes`` >= the aligned shard (and, with ``exclude_same_model``, no replica of that
    model), taking its lowest ``tp`` such GPUs.

    The defaults follow the artifact (``scheduler.py``, ``Scheduler.prewarm``, its
    ``disable_placement`` branch): models in configuration order (the artifact's ``ModelList``
    order, which is also the workload's popularity order), and the artifact's loop: each tick asks
    for the model's whole demand ``n_found + n_burst`` again, without subtracting the replicas it
    already has (``total_prewarm_replicas``), so replicas pile up tick after tick until memory or
    GPUs run out; the tick ends at the first model whose demand is used up (``<= 0: break``) or
    that finds no GPUs.

    Args:
        period_s: how often the simulator calls ``plan`` (0.5 s).
        per_instance: requests one instance serves at once, ``B`` (32).
        source: storage tier new replicas load from.
        chunk_bytes: memory granule the per-GPU shard is rounded up to (2 MiB).
        exclude_same_model: skip GPUs already holding a replica of the same model (the artifact
            does this even in its round-robin mode).
        artifact_loop: ``True`` (default): the artifact's loop described above. ``False``: our
            variant, which places only the *missing* replicas (demand minus existing) and keeps
            rotating over the models that still want some and can place.
        order: ``"config"`` (default): models in the snapshot's order, which is the models
            configuration order (the artifact's ``ModelList``); ``"name"``: sorted by name.
    """

    period_s: float = 0.5
    per_instance: int = 32
    source: str = "host_pinned"
    chunk_bytes: int = CHUNK_BYTES
    exclude_same_model: bool = True
    artifact_loop: bool = True
    order: str = "config"

    def __post_init__(self) -> None:
        check_source(self.source, "RoundRobinPlacer.source")

    def plan(self, snap: Snapshot, predictions: Mapping[str, tuple[float, float]]) -> list[Prewarm | Evict]:
        """Prewarm actions for this tick."""
        running = running_instances(snap)
        have = Counter(r.model for r in snap.replicas)
        names = list(snap.models) if self.order == "config" else sorted(snap.models)
        left: dict[str, int] = {}
        for name in names:
            avg, peak = predictions.get(name, (0.0, 0.0))
            nf, nb = replica_demand(avg, peak, running.get(name, 0), self.per_instance)
            left[name] = nf + nb if self.artifact_loop else max(nf + nb - have.get(name, 0), 0)
        free = [gv.free_bytes for gv in snap.gpus]
        holds: list[set[str]] = [set() for _ in snap.gpus]
        for r in snap.replicas:
            for x in r.gpus:
                holds[x].add(r.model)

        actions: list[Prewarm | Evict] = []
        active = list(names) if self.artifact_loop else [n for n in names if left[n] > 0]
        i = 0
        while active:
            name = active[i % len(active)]
            if left[name] <= 0:
                if self.artifact_loop:
                    break
                active.remove(name)
                continue
            mv = snap.models[name]
            need = shard_need(mv, self.chunk_bytes)
            gpus = self._first_fit(snap, free, holds, name, need, mv.tp)
            if gpus is None:
                if self.artifact_loop:
                    break
                active.remove(name)
                continue
            left[name] -= 1
            for x in gpus:
                free[x] -= need
                holds[x].add(name)
            actions.append(Prewarm(name, gpus, self.source))
            i = i + 1 if self.artifact_loop else (active.index(name) + 1) % len(active)
        return actions

    def _first_fit(self, snap: Snapshot, free: list[int], holds: list[set[str]], name: str,
                   need: int, tp: int) -> tuple[int, ...] | None:
        for node in range(snap.n_nodes):
            ok = [x for x in snap.node_gpus(node)
                  if free[x] >= need and not (self.exclude_same_model and name in holds[x])]
            if len(ok) >= tp:
                return tuple(ok[:tp])
        return None
