"""Autoscalers: how many instances each model runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from warmsim.policies.types import ACTIVE, ScaleDecision, Snapshot


@dataclass(frozen=True)
class NoAutoscaler:
    """Never starts or stops anything (static allocation, MuxServe)."""

    period_s: float = 1.0

    def decide(self, snap: Snapshot) -> ScaleDecision:
        return ScaleDecision()


@dataclass(frozen=True)
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
