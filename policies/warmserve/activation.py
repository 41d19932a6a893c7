"""Where an on-demand instance starts (warmserve.md section 4, "On-demand activation").

Both activators implement :class:`warmsim.policies.base.Activator`. The simulator calls
``choose(snap, model)`` each time the autoscaler or the router wants a new instance of ``model``;
after applying the returned :class:`warmsim.policies.types.Activate` it evicts every replica that
:func:`replicas_evicted_by` names (WarmServe's activation turns a universal worker into a
dedicated one).

A GPU is *free* when no instance other than a stopped one is on it (draining instances still hold
their GPUs until they stop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from warmsim.policies.types import Activate, ReplicaView, Snapshot
from warmsim.sim.cost import check_source
from warmsim.sim.knobs import bounded, choice, text

#: The ``source`` of an activation that takes over a prewarmed replica.
PREWARMED = "prewarmed"


def replicas_evicted_by(snap: Snapshot, gpus: tuple[int, ...] | list[int], keep_replica: int | None) -> list[int]:
    """Ids (ascending) of every prewarmed replica, ready or loading, that shares a GPU with
    ``gpus``, except ``keep_replica`` (the replica the activation takes over, if any)."""
    want = set(gpus)
    return sorted(r.id for r in snap.replicas if r.id != keep_replica and want.intersection(r.gpus))


def _hit(snap: Snapshot, model: str, ready: bool, busy: frozenset[int]) -> ReplicaView | None:
    best = None
    for r in snap.replicas:
        if r.model == model and r.ready == ready and not busy.intersection(r.gpus):
            if best is None or r.id < best.id:
                best = r
    return best


@dataclass(frozen=True)
@bounded(miss_source=text("weight source of a miss (a storage tier, sim/sources/)"),
         miss_gpus=choice("GPUs a miss takes", "least_overlap", "first_free"),
         miss_node=choice("node a miss takes", "first", "best"))
class WarmServeActivator:
    """WarmServe's activation order.

    (a) a ready replica of ``model`` whose GPUs are all free -> take it over (lowest replica id
    first); (b) else a replica of ``model`` still loading, same condition -> take it over (the
    simulator starts the instance when its load completes); (c) else a miss: ``tp`` free GPUs on
    one node, cold-loading from ``miss_source``; ``None`` if no node has ``tp`` free GPUs.

    Miss GPUs (``miss_gpus``):
      * ``"least_overlap"`` (WarmServe, as the artifact): on each node rank the free GPUs by how
        many prewarmed replicas (ready or loading) sit on each, take the ``tp`` lowest
        (ties: lowest GPU id). ``miss_node`` picks the node.
      * ``"first_free"`` (the artifact with placement disabled): the lowest ``tp`` free GPUs of
        the first node that has enough.

    Args:
        miss_source: storage tier a miss loads weights from (a ``sim.cost.SOURCES`` name).
        miss_gpus: ``"least_overlap"`` or ``"first_free"`` (see above).
        miss_node: ``"first"`` (the artifact: the lowest-numbered node with ``tp`` free GPUs) or
            ``"best"`` (the node whose choice evicts the fewest distinct replicas; ties lowest node).
    """

    #: Whether ``choose`` takes over prewarmed replicas (the builder warns when a placer prewarms for an
    #: activator that never does).
    adopts_replicas: ClassVar[bool] = True

    miss_source: str = "host_pinned"
    miss_gpus: str = "least_overlap"
    miss_node: str = "first"

    def __post_init__(self) -> None:
        check_source(self.miss_source, "WarmServeActivator.miss_source")

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        """Where to start one instance of ``model`` (see the class docstring)."""
        busy = snap.busy_gpus()
        for ready in (True, False):
            r = _hit(snap, model, ready, busy)
            if r is not None:
                return Activate(model, tuple(r.gpus), source=PREWARMED, replica=r.id)
        gpus = self.miss_gpus_for(snap, model, busy)
        if gpus is None:
            return None
        return Activate(model, gpus, source=self.miss_source, replica=None)

    def miss_gpus_for(self, snap: Snapshot, model: str, busy: frozenset[int]) -> tuple[int, ...] | None:
        """The GPUs a miss would use (step (c)), or ``None``."""
        tp = snap.models[model].tp
        per_gpu = [0] * len(snap.gpus)
        for r in snap.replicas:
            for x in set(r.gpus):
                per_gpu[x] += 1
        best: tuple[int, tuple[int, ...]] | None = None
        for node in range(snap.n_nodes):
            free = [x for x in snap.node_gpus(node) if x not in busy]
            if len(free) < tp:
                continue
            if self.miss_gpus == "first_free":
                pick = tuple(free[:tp])
            else:
                pick = tuple(sorted(sorted(free, key=lambda x: (per_gpu[x], x))[:tp]))
            if self.miss_node == "first":
                return pick
            cost = len(replicas_evicted_by(snap, pick, None))
            if best is None or cost < best[0]:
                best = (cost, pick)
        return None if best is None else best[1]
