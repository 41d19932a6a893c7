"""The policy Protocols: what the simulator calls at each decision point. A system is a bundle of one
implementation of each (:class:`warmsim.sim.bundle.Bundle`); the implementations live in ``warmsim.policies``
(``warmsim.sim.policy_protocols`` re-exports this module).

Each method documents what one call means. Implementations are synchronous, typed and free of I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from warmsim.sim.types import Activate, Evict, InstanceView, Prewarm, ScaleDecision, Snapshot


class Predictor(Protocol):
    """Predicts each model's load (requests in flight) for the next window."""

    window_s: float

    def observe(self, model: str, window: int, avg: float, peak: float) -> None:
        """Window ``window`` (index from the workload's start) closed with this average and peak
        in-flight load for ``model``."""

    def predict(self, model: str, window: int) -> tuple[float, float]:
        """Predicted (average, peak) in-flight load of ``model`` in window ``window``."""


class Router(Protocol):
    """Chooses the instance a new request goes to."""

    def route(self, model: str, instances: Sequence[InstanceView]) -> int | None:
        """Return the id of one of ``instances`` (live instances of ``model``), or ``None`` to hold
        the request at the router until capacity appears (it is retried)."""


class Autoscaler(Protocol):
    """Decides how many instances each model runs."""

    period_s: float

    def decide(self, snap: Snapshot) -> ScaleDecision:
        """Called every ``period_s``: instances to start per model and instances to drain."""


class Activator(Protocol):
    """Chooses where a new instance of a model starts (and from which tier its weights come).

    An activator that takes over prewarmed replicas (returns ``Activate(replica=...)``) says so with a
    class attribute ``adopts_replicas = True``; the builder warns when a system has a prewarm placer and
    an activator without it (its replicas would never be used: 0 prewarm hits)."""

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        """Return where to start one instance of ``model``, or ``None`` if it cannot start now."""


class PrewarmPlacer(Protocol):
    """Places prewarmed replicas (universal workers)."""

    period_s: float

    def plan(self, snap: Snapshot, predictions: Mapping[str, tuple[float, float]]) -> list[Prewarm | Evict]:
        """Called every ``period_s`` with (avg, peak) predictions per model: replicas to add/drop."""


class DemandAwarePlacer(PrewarmPlacer, Protocol):
    """A placer that can tell cheaply that it has nothing to place (its declared inputs).

    ``wants_more`` may read only the snapshot's models, the models and states of its instances, the
    models of its replicas, and the predictions; when it returns False, ``plan`` must return no
    action for that snapshot. The simulator then calls neither (nor builds their snapshot) until
    the predictions, the number of live instances of some model, or the set of replicas changes.
    :class:`warmsim.policies.warmserve.placement.EvictAwarePlacer` is one.
    """

    def wants_more(self, snap: Snapshot, predictions: Mapping[str, tuple[float, float]]) -> bool:
        """Whether ``plan`` could place something now."""


class InitialPlacer(Protocol):
    """Places instances that exist from time 0 (static allocation, MuxServe's colocation)."""

    def place(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[Activate]:
        """Instances to create ready at time 0, given each model's mean request rate (req/s)."""


class KVStep(Protocol):
    """One KV-lending decision for one engine (``policies.warmserve.kv_reserve.KVReserveStep``)."""

    reserve: int  # blocks to lend to the GPU pool now
    give_back: int  # lent blocks to take back now


class KVPolicy(Protocol):
    """Lends idle KV blocks of running engines to the GPU pool (WarmServe's KV reservation).

    ``step`` must be a pure function of its arguments: the simulator calls it only for engines
    whose block counts changed since their last step (an unchanged engine would get the same
    answer, and a step that lent or took back nothing leaves nothing to repeat).
    """

    period_s: float

    def step(self, total_blocks: int, running: int, free_blocks: int, reserved_blocks: int,
             freed_blocks: int | None = None) -> KVStep:
        """Blocks to lend or take back for one engine, from its block counts."""


class SharingModel(Protocol):
    """How a step slows on a GPU shared with other engines (MuxServe's colocation)."""

    def factor(self, phase: str, share: float, batch: int, busy_neighbours: int = 0, *,
               tokens: int | None = None) -> float:
        """Step-time factor of a ``phase`` step of ``batch`` sequences at compute ``share`` with
        ``busy_neighbours`` co-located engines mid-step (``tokens``: a prefill's prompt tokens)."""
