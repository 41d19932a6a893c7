"""Per-window load profiles: requests in flight, time-averaged and peak.

WarmServe measures "load" as the number of requests in flight (concurrency), not the arrival rate
(warmserve.md section 3). :func:`inflight_windows` turns a list of requests, each occupying the
half-open interval ``[arrival, arrival + service)``, into the exact time-averaged and peak
concurrency of each fixed-length window. The simulator uses it to build a predictor's seasonal
history (previous days' requests with an estimated service time each) and the oracle's truth.
"""

from __future__ import annotations

import numpy as np


def inflight_windows(arrival_s: np.ndarray, service_s: np.ndarray, window_s: float,
                     n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-window average and peak number of requests in flight.

    Request ``i`` is in flight on ``[arrival_s[i], arrival_s[i] + service_s[i])`` (half-open: a
    request that ends at ``t`` and one that starts at ``t`` never overlap; a zero-length request is
    never in flight). Window ``k`` covers ``[k * window_s, (k + 1) * window_s)`` for
    ``k = 0 .. n_windows - 1``; time 0 is the start of the profile. Requests that started before 0
    count while they overlap the windows; parts after the last window are ignored.

    Returns ``(avg, peak)``, two float arrays of length ``n_windows``: ``avg[k]`` is the integral of
    the in-flight count over window ``k`` divided by ``window_s``; ``peak[k]`` is the largest count
    held for a positive duration inside the window (the count at the window's start included).

    Vectorised: one sort of the start/end events, a cumulative sum, and a piecewise-constant
    integration; O(n log n) in the number of requests.
    """
    arrival = np.asarray(arrival_s, dtype=np.float64).ravel()
    service = np.asarray(service_s, dtype=np.float64).ravel()
    if arrival.shape != service.shape:
        raise ValueError(f"arrival_s and service_s differ in length: {arrival.size} != {service.size}")
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    if n_windows < 0:
        raise ValueError(f"n_windows must be >= 0, got {n_windows}")
    if not (np.all(np.isfinite(arrival)) and np.all(np.isfinite(service))):
        raise ValueError("arrival_s and service_s must be finite")
    if np.any(service < 0):
        raise ValueError("service_s must be >= 0")
    n_windows = int(n_windows)
    if n_windows == 0:
        return np.zeros(0), np.zeros(0)

    edges = np.arange(n_windows + 1, dtype=np.float64) * window_s
    # Events: +1 at each start, -1 at each end; net change per distinct time.
    times = np.concatenate([arrival, arrival + service])
    deltas = np.concatenate([np.ones(arrival.size), -np.ones(arrival.size)])
    order = np.argsort(times, kind="stable")
    times, deltas = times[order], deltas[order]
    if times.size:
        uniq, first = np.unique(times, return_index=True)
        net = np.add.reduceat(deltas, first)
        level_after = np.cumsum(net)  # count on [uniq[j], uniq[j+1])
    else:
        uniq = np.zeros(0)
        level_after = np.zeros(0)

    # Breakpoints inside [0, end]: window edges plus every event time in range.
    inside = uniq[(uniq > edges[0]) & (uniq < edges[-1])]
    points = np.union1d(edges, inside)
    seg_start = points[:-1]
    seg_len = np.diff(points)
    idx = np.searchsorted(uniq, seg_start, side="right") - 1
    level = np.where(idx >= 0, level_after[np.clip(idx, 0, None)] if uniq.size else 0.0, 0.0)
    level = np.asarray(level, dtype=np.float64)

    # Every window starts a segment (its left edge is a breakpoint), so reduceat is exact.
    starts = np.searchsorted(seg_start, edges[:-1], side="left")
    avg = np.add.reduceat(level * seg_len, starts) / window_s
    peak = np.maximum.reduceat(level, starts)
    # Guard round-off of the cumulative sum (counts are integers).
    return avg, np.rint(peak)
