"""ServerlessLLM's concurrency autoscaler with keep-alive.

ServerlessLLM's per-model control loop (every second) computes the instances a model needs as
``ceil(requests in the system / target)``, clipped to ``[min_instances, max_instances]``; it starts
one instance per loop when there are fewer, and releases an instance only once the model has been
over-provisioned for ``keep_alive`` seconds.

Keep-alive needs idle time: each instance view carries ``idle_since``, the moment its last request
ended (or it became active, if it never served). A snapshot built without it (hand-made ones) falls
back to state kept between calls: for each instance id, the snapshot time at which it was first seen
idle (active with nothing in flight). That makes it a policy over a *sequence* of snapshots: build a
fresh one for every run, and call :meth:`SllmAutoscaler.decide` with non-decreasing ``time_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from warmsim.policies.types import ACTIVE, InstanceView, LoadView, ScaleDecision, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_SECONDS, bounded, count, nonneg, period


@dataclass
@bounded(period_s=period("control-loop period in seconds"),
         target_concurrency=count("requests per instance before another starts"),
         keep_alive_s=nonneg("seconds an over-provisioned instance is kept", MAX_SECONDS),
         min_instances=count("instances kept per model", 10_000, lo=0),
         max_instances=count("cap on instances per model; null = none", 10_000, null=True),
         max_starts_per_period=count("instance starts per period; null = no cap", 10_000, null=True),
         max_stops_per_period=count("instance stops per period; null = no cap", 10_000, null=True))
class SllmAutoscaler:
    """Concurrency target per instance, per-instance keep-alive, one start and one stop per period.

    Each ``period_s`` and for every model:

    - ``demand`` = requests of the model in the system (running, queued at instances, held at the
      router): ``max(load.inflight, load.waiting + sum of its instances' inflight)``, so it is right
      whether or not the simulator counts router-held requests in ``inflight``;
    - ``desired = clip(ceil(demand / target_concurrency), min_instances, max_instances)``;
    - fewer live instances (starting .. active) than desired: start ``desired - live``, at most
      ``max_starts_per_period``;
    - more: stop active instances that have had nothing in flight for at least ``keep_alive_s``
      (longest idle first, then lowest id), at most ``live - desired`` and ``max_stops_per_period``.

    Idle time counts from ``InstanceView.idle_since``, when the instance's last request really
    ended, so it is released at the first tick at or after ``idle_since + keep_alive_s`` (a request
    ending at 3.2 s with a 9.7 s keep-alive: released at the 13 s tick). Only for a view without
    ``idle_since`` is the instance idle from the first tick that sees it active with ``inflight ==
    0`` (resolution = ``period_s``, and busy spells shorter than a period go unseen).
    """

    #: Seconds between decisions. Default 1.0: ServerlessLLM's router loop runs its autoscaler once
    #: per second (``loop_interval = 1``).
    period_s: float = 1.0
    #: Requests in flight one instance is meant to hold (``auto_scaling_config.target`` with
    #: ``metric: concurrency``). Default 1: ServerlessLLM's default deployment config. Comparisons
    #: against WarmServe should set it to the per-instance capacity used there (32), see
    #: docs/baselines.md.
    target_concurrency: int = 1
    #: Seconds an idle instance is kept before release (``keep_alive``). Default 0: ServerlessLLM's
    #: default deployment config releases over-provisioned instances at once.
    keep_alive_s: float = 0.0
    #: Instances kept per model even without load (``min_instances``). Default 0 (ServerlessLLM).
    min_instances: int = 0
    #: Cap on live instances per model (``max_instances``). Default 10 (ServerlessLLM's default
    #: deployment config); ``None`` for no cap.
    max_instances: int | None = 10
    #: Instances started per model per period. Default 1: ServerlessLLM's loop creates one instance
    #: per iteration. ``None``: start all that are missing at once.
    max_starts_per_period: int | None = 1
    #: Instances stopped per model per period. Default 1: ServerlessLLM's loop stops one instance
    #: per iteration. ``None``: no limit.
    max_stops_per_period: int | None = 1
    _idle_since: dict[int, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_instances is not None and self.max_instances < self.min_instances:
            raise UserError(f"SllmAutoscaler.max_instances: got {self.max_instances}; allowed: at least "
                            f"min_instances ({self.min_instances})")

    # -- pieces, public so tests and docs can check the arithmetic ---------------------------------

    def desired(self, demand: int) -> int:
        """Instances wanted for ``demand`` requests in flight."""
        n = math.ceil(demand / self.target_concurrency) if demand > 0 else 0
        n = max(n, self.min_instances)
        return n if self.max_instances is None else min(n, self.max_instances)

    @staticmethod
    def demand(load: LoadView | None, live: list[InstanceView]) -> int:
        """Requests of one model in the system, from its load view and live instances."""
        held = sum(i.inflight for i in live)
        if load is None:
            return held
        return max(load.inflight, load.waiting + held)

    def idle_for(self, instance_id: int, now_s: float) -> float:
        """Seconds ``instance_id`` has been idle as of ``now_s`` (0 if not idle)."""
        since = self._idle_since.get(instance_id)
        return 0.0 if since is None else now_s - since

    # -- the Autoscaler protocol --------------------------------------------------------------------

    def _observe(self, snap: Snapshot) -> None:
        seen: set[int] = set()
        for inst in snap.instances:
            if inst.state == ACTIVE and inst.inflight == 0:
                seen.add(inst.id)
                if inst.idle_since is not None:
                    self._idle_since[inst.id] = inst.idle_since
                else:
                    self._idle_since.setdefault(inst.id, snap.time_s)
        for iid in [i for i in self._idle_since if i not in seen]:
            del self._idle_since[iid]

    def decide(self, snap: Snapshot) -> ScaleDecision:
        """Instances to start per model and idle instances to stop, at ``snap.time_s``."""
        self._observe(snap)
        live_by_model = snap.live_by_model()
        start: dict[str, int] = {}
        stop: list[int] = []
        for name in sorted(set(snap.models) | set(snap.load) | set(live_by_model)):
            live = live_by_model.get(name, [])
            want = self.desired(self.demand(snap.load.get(name), live))
            n = len(live)
            if want > n:
                k = want - n
                if self.max_starts_per_period is not None:
                    k = min(k, self.max_starts_per_period)
                start[name] = k
            elif want < n:
                idle = [(self.idle_for(i.id, snap.time_s), i.id) for i in live
                        if i.state == ACTIVE and i.inflight == 0]
                ready = sorted(((t, iid) for t, iid in idle if t >= self.keep_alive_s),
                               key=lambda p: (-p[0], p[1]))
                k = n - want
                if self.max_stops_per_period is not None:
                    k = min(k, self.max_stops_per_period)
                stop.extend(iid for _, iid in ready[:k])
        return ScaleDecision(start=start, stop=tuple(stop))
