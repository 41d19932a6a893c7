"""Plain on-demand serving: cold-start instances on free GPUs, release them after a keep-alive."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from warmsim.policies.types import ACTIVE, Activate, InstanceView, ScaleDecision, Snapshot
from warmsim.sim.cost import check_source
from warmsim.sim.knobs import MAX_SECONDS, bounded, count, nonneg, period, positive, text


@dataclass(frozen=True)
@bounded(source=text("weight source of a new instance (a storage tier, sim/sources/)"))
class FirstFitActivator:
    """Start on the lowest-numbered ``tp`` free GPUs inside one node; weights from ``source``."""

    #: Whether ``choose`` takes over prewarmed replicas (the builder warns when a placer prewarms for an
    #: activator that never does).
    adopts_replicas: ClassVar[bool] = False

    source: str = "host_pinned"

    def __post_init__(self) -> None:
        check_source(self.source, "FirstFitActivator.source")

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        tp = snap.models[model].tp
        for free in snap.free_gpus_by_node():
            if len(free) >= tp:
                return Activate(model, tuple(free[:tp]), source=self.source)
        return None


@dataclass
@bounded(period_s=period("decision period in seconds"),
         per_instance=count("requests in flight one instance serves"),
         up=positive("scale up above this share of capacity", 100),
         keep_alive_s=nonneg("seconds an idle instance is kept", MAX_SECONDS),
         min_instances=count("instances kept per model", 10_000, lo=0))
class KeepAliveAutoscaler:
    """Scale up when time-averaged load exceeds ``up`` x capacity (to ``ceil(load/up/per_instance)``);
    release an active instance once it has had no request for ``keep_alive_s``.

    Idle time counts from ``InstanceView.idle_since``, the moment the instance's last request ended
    (or it became active, if it never served), so an instance whose last request ends at 3.45 s with
    a 10 s keep-alive is released at the first tick at or after 13.45 s. A snapshot built without
    ``idle_since`` (hand-made ones) falls back to the first tick that saw the instance idle.
    """

    period_s: float = 0.5
    per_instance: int = 32
    up: float = 0.8
    keep_alive_s: float = 60.0
    min_instances: int = 0
    _seen_idle: dict = field(default_factory=dict)  # fallback only: first tick that saw it idle

    def idle_since(self, inst: InstanceView, now: float) -> float | None:
        """When ``inst`` became idle (None while it has requests)."""
        if inst.inflight > 0:
            self._seen_idle.pop(inst.id, None)
            return None
        if inst.idle_since is not None:
            return inst.idle_since
        return self._seen_idle.setdefault(inst.id, now)

    def decide(self, snap: Snapshot) -> ScaleDecision:
        start: dict[str, int] = {}
        stop: list[int] = []
        live = snap.live_by_model()
        since = {inst.id: self.idle_since(inst, snap.time_s) for insts in live.values() for inst in insts}
        for name, lv in snap.load.items():
            insts = live.get(name, [])
            n = len(insts)
            if n == 0:
                if lv.waiting or lv.inflight:
                    start[name] = 1
                continue
            if lv.avg_inflight > self.up * n * self.per_instance:
                start[name] = math.ceil(lv.avg_inflight / self.up / self.per_instance) - n
            idle = sorted((i for i in insts if i.state == ACTIVE and (t := since[i.id]) is not None
                           and snap.time_s - t >= self.keep_alive_s), key=lambda i: i.id)
            keep = max(self.min_instances, 1 if (lv.waiting or lv.inflight) else 0)
            stop.extend(i.id for i in idle[: max(0, n - keep)])
        return ScaleDecision(start={m: k for m, k in start.items() if k > 0}, stop=tuple(stop))
