"""Autoscalers: how many instances each model runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from warmsim.policies.types import ACTIVE, ScaleDecision, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_SECONDS, bounded, count, nonneg, period, positive


@dataclass(frozen=True)
@bounded(period_s=period("decision period in seconds (it decides nothing)"))
class NoAutoscaler:
    """Never starts or stops anything (static allocation, MuxServe)."""

    period_s: float = 1.0

    def decide(self, snap: Snapshot) -> ScaleDecision:
        return ScaleDecision()


@dataclass(frozen=True)
@bounded(period_s=period("decision period in seconds"),
         per_instance=count("requests in flight one instance is sized for"),
         up=positive("scale up above this share of capacity", 100),
         down=nonneg("scale down below this share of capacity (at most up)", 100),
         protect_s=nonneg("seconds a new instance is never stopped", MAX_SECONDS),
         min_instances=count("instances kept per model", 10_000, lo=0),
         max_instances=count("cap on instances per model; null = none", 10_000, null=True))
class ThresholdAutoscaler:
    """WarmServe's autoscaler (warmserve.md section 7).

    Every ``period_s``: load = the model's time-averaged in-flight requests over the snapshot's
    window; capacity = live instances x ``per_instance``. Above ``up`` x capacity scale to
    ``ceil(load / up / per_instance)``; below ``down`` x capacity scale to
    ``ceil(load / down / per_instance)``, stopping only instances older than ``protect_s``, those
    with the fewest requests first (they drain before they stop). ``min_instances`` per model are
    kept; a model with requests waiting at the router and no live instance always gets one.
    """

    period_s: float = 0.5
    per_instance: int = 32
    up: float = 0.8
    down: float = 0.5
    protect_s: float = 5.0
    min_instances: int = 0
    max_instances: int | None = None

    def __post_init__(self) -> None:
        if self.down > self.up:
            raise UserError(f"ThresholdAutoscaler.down: got {self.down}; allowed: at most up ({self.up}), or the "
                            "autoscaler would stop what it just started")
        if self.max_instances is not None and self.min_instances > self.max_instances:
            raise UserError(f"ThresholdAutoscaler.min_instances: got {self.min_instances}; allowed: at most "
                            f"max_instances ({self.max_instances})")

    def decide(self, snap: Snapshot) -> ScaleDecision:
        start: dict[str, int] = {}
        stop: list[int] = []
        by_model = snap.live_by_model()
        for name, lv in snap.load.items():
            live = by_model.get(name, [])
            n = len(live)
            load = lv.avg_inflight
            cap = n * self.per_instance
            target = n
            if n == 0:
                target = 1 if (lv.waiting > 0 or lv.inflight > 0 or load > 0) else 0
            elif load > self.up * cap:
                target = math.ceil(load / self.up / self.per_instance)
            elif load < self.down * cap:
                target = math.ceil(load / self.down / self.per_instance)
                if lv.waiting > 0 or lv.inflight > 0:
                    target = max(target, 1)
            target = max(target, self.min_instances)
            if self.max_instances is not None:
                target = min(target, self.max_instances)
            if target > n:
                start[name] = target - n
            elif target < n:
                old = [i for i in live if i.state == ACTIVE and snap.time_s - i.created_s >= self.protect_s]
                old.sort(key=lambda i: (i.inflight, -i.created_s, i.id))
                stop.extend(i.id for i in old[: n - target])
        return ScaleDecision(start=start, stop=tuple(stop))
