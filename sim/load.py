"""Load tracking: each model's in-flight requests, their time integral, the autoscaler's window
average, the predictor's window peaks, instance counts per model, and GPUs busy over time.

It owns the per-model load state and the :class:`~warmsim.sim.types.LoadView` s built from it, kept
incrementally: a view is recomputed only for models busy now or inside the load window, or whose
instance counts changed. A model idle through the whole window has in-flight 0 and average exactly
0.0 (its area did not move since the oldest sample), so its cached view stays right.
"""

from __future__ import annotations

from collections import deque

from warmsim.sim.types import LIVE_STATES, LoadView


class _Areas(dict):
    """One load sample: each model's in-flight area at time ``t``. It stores only the models busy
    at ``t``; an idle model's area did not move until its next 0 -> 1 change (or until now), so a
    lookup recovers it from the tracker's record of those changes."""

    __slots__ = ("load", "t")

    def __init__(self, load: LoadTracker, t: float, busy: dict):
        super().__init__(busy)
        self.load, self.t = load, t

    def __missing__(self, m: str) -> float:
        for t, area in self.load.wakes[m]:
            if t >= self.t:
                return area
        return self.load.area[m]


class LoadTracker:
    """Per-model load of one run. ``held`` is the router's queues (their lengths enter the views)."""

    def __init__(self, env, order: list[str], load_window_s: float, held: dict[str, deque]):
        self.env = env
        self.order = order
        self.load_window_s = load_window_s
        self.held = held
        self.inflight = {m: 0 for m in order}  # requests in the system per model
        self.area = {m: 0.0 for m in order}  # time integral of inflight up to area_t
        self.area_t = {m: 0.0 for m in order}
        self.window_peak = {m: 0 for m in order}  # peak since the predictor window began
        self.pending_start = {m: 0 for m in order}  # instance starts in progress
        self.live = {m: 0 for m in order}  # live instances (starting .. active)
        self.samples: deque = deque()  # (time, _Areas) every load_window_s / 10 and at control ticks
        # Models with in-flight > 0 now, models whose view may differ from the cached one (busy
        # inside the window; instance counts changed), and per model the (time, area) of each
        # 0 -> 1 change since the oldest sample.
        self.busy: set[str] = set()
        self.active: set[str] = set()
        self.dirty: set[str] = set()
        self.wakes: dict[str, deque] = {m: deque() for m in order}
        self._memo: dict[str, tuple] = {}
        self._cache: dict[str, LoadView] = {}
        for m in order:  # every model starts idle: in-flight 0, average 0.0, no instances
            key = (0, 0.0, 0, 0, 0)
            self._memo[m] = (key, LoadView(*key))
            self._cache[m] = self._memo[m][1]
        self.gpu_busy_area = 0.0  # GPU-seconds with an instance on the GPU, from time 0 (not the lead)
        self.gpu_busy_t = 0.0
        self.gpus_busy = 0

    # ---- changes ----------------------------------------------------------------------------------
    def bump(self, model: str, delta: int) -> None:
        """``delta`` requests of ``model`` entered (+1) or left (-1) the system now."""
        now = self.env.now
        n = self.inflight[model]
        self.area[model] += n * (now - self.area_t[model])
        self.area_t[model] = now
        if n == 0:
            self.wakes[model].append((now, self.area[model]))
        n = self.inflight[model] = n + delta
        if n:
            self.busy.add(model)
        else:
            self.busy.discard(model)
        self.active.add(model)
        if n > self.window_peak[model]:
            self.window_peak[model] = n

    def state_changed(self, model: str, old: str, new: str) -> None:
        """An instance of ``model`` changed state: keep the live counts."""
        d = (new in LIVE_STATES) - (old in LIVE_STATES)
        if d:
            self.live[model] += d
            self.live_changes += 1
            self.dirty.add(model)

    def instance_added(self, model: str) -> None:
        self.live[model] += 1
        self.live_changes += 1
        self.dirty.add(model)

    def pending_changed(self, model: str, delta: int) -> None:
        self.pending_start[model] += delta
        self.dirty.add(model)

    def gpu_busy_delta(self, delta: int) -> None:
        now = self.env.now
        if now > 0:  # a prewarm lead (negative times) is not counted
            self.gpu_busy_area += self.gpus_busy * (now - self.gpu_busy_t)
            self.gpu_busy_t = now
        self.gpus_busy += delta

    # ---- reading ----------------------------------------------------------------------------------
    def area_now(self, model: str, now: float) -> float:
        return self.area[model] + self.inflight[model] * (now - self.area_t[model])

    def sample(self) -> None:
        """Record the areas of the models busy now; drop samples older than the load window."""
        now = self.env.now
        samples = self.samples
        samples.append((now, _Areas(self, now, {m: self.area_now(m, now) for m in self.busy})))
        while len(samples) > 1 and samples[1][0] <= now - self.load_window_s:
            samples.popleft()
        t0 = samples[0][0]
        for m in self.active:  # forget 0 -> 1 changes before the oldest sample
            w = self.wakes[m]
            while w and w[0][0] < t0:
                w.popleft()

    def views(self, now: float) -> dict[str, LoadView]:
        """Per-model LoadViews (a fresh dict, in model order); a model's view object is reused while
        its five numbers stay the same. avg_inflight is the time-average over the load window."""
        memo, out = self._memo, self._cache
        inflight, area, area_t, held, pend, live = (self.inflight, self.area, self.area_t, self.held,
                                                     self.pending_start, self.live)
        if self.samples:
            t0, areas = self.samples[0]
            span = now - t0
        else:
            t0, areas, span = now, None, 0.0
        todo = self.active | self.dirty if self.dirty else self.active
        self.dirty = set()
        done = []
        for m in todo:
            n = inflight[m]
            if span <= 0:
                avg = float(n)
            else:
                avg = (area[m] + n * (now - area_t[m]) - areas[m]) / span
            key = (n, avg, len(held[m]), live[m], pend[m])
            hit = memo.get(m)
            if hit is None or hit[0] != key:
                hit = memo[m] = (key, LoadView(*key))
            out[m] = hit[1]
            if n == 0 and area_t[m] <= t0:
                done.append(m)
        self.active.difference_update(done)
        return dict(out)  # in model order: every key was set in __init__

    def close(self, now: float) -> None:
        """Bring the areas and the GPU-busy integral up to ``now`` (the run's end)."""
        self.gpu_busy_delta(0)
        for m in self.order:
            self.area[m] = self.area_now(m, now)
            self.area_t[m] = now

    # ---- predictor windows ----------------------------------------------------------------------
    def window_loop(self, predictor, log: list):
        """Close a prediction window every ``predictor.window_s``: log (model, window, predicted
        avg/peak, observed avg/peak), tell the predictor, start the next window's peak."""
        w = 0
        starts = {m: 0.0 for m in self.order}
        if self.env.now < 0:  # windows count from the first request's time, 0 (a prewarm lead before it)
            yield self.env.timeout(-self.env.now)
        while True:
            yield self.env.timeout(predictor.window_s)
            now = self.env.now
            for m in self.order:
                area = self.area_now(m, now)
                avg = (area - starts[m]) / predictor.window_s
                starts[m] = area
                p_avg, p_peak = predictor.predict(m, w)
                log.append((m, w, p_avg, p_peak, avg, float(self.window_peak[m])))
                predictor.observe(m, w, avg, float(self.window_peak[m]))
                self.window_peak[m] = self.inflight[m]
            self.observations += 1
            w += 1

    #: Predictor windows closed so far (predictions change only with them).
    observations: int = 0
    #: Changes of some model's live-instance count so far (a placer's input, sim.weights).
    live_changes: int = 0
