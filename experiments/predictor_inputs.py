"""What a WarmServe predictor is built with: the CSP's seasonal history and the oracle's truth.

:func:`predictor_inputs` is called by :func:`experiments.builder.build_bundle` for a system's
``predictor`` node and returns the keyword arguments its constructor needs:

* ``CorrectiveSeasonalPredictor``: ``history``, the (avg, peak) in-flight load of each history day,
  estimated from arrivals and service-time estimates (``experiments.builder.inflight_estimate``),
  per window of ``window_s``, or per bin of ``baseline_window_s`` when the config sets it (the
  artifact's 5-minute character-file grid, indexed by window id; see the predictor's docstring).
* ``OraclePredictor``: ``truth``, the in-flight load the run's own requests really produce per
  window. It is observed, not estimated: a pre-pass replays the same workload on the same cluster
  and cost model under the ``static`` system (every model sized for its peak at t = 0, nothing
  starts later, so no request waits on a start-up) and measures each request's in-flight interval,
  arrival to finish, from that run's requests table. The pre-pass is cached per workload and
  window length, so a compare with several oracle systems pays for it once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The system whose run gives the oracle its truth (``experiments/conf/system/static.yaml``).
TRUTH_SYSTEM = "static"

_truth_cache: dict[tuple, tuple[Any, dict[str, np.ndarray]]] = {}


def predictor_inputs(pred, workload, models, cluster, cost, cfg) -> dict[str, Any]:
    """Keyword arguments for instantiating the ``pred`` config node (``history`` for the CSP,
    ``truth`` for the oracle, nothing for the others)."""
    target = str(pred._target_)
    window = float(pred.window_s)
    if target.endswith("OraclePredictor"):
        return {"truth": oracle_truth(workload, models, cluster, cost, cfg, window)}
    if target.endswith("CorrectiveSeasonalPredictor"):
        bin_s = pred.get("baseline_window_s")
        return {"history": seasonal_history(workload, models, cost, int(cfg.sim.service_estimate_batch),
                                            window, None if bin_s is None else float(bin_s))}
    return {}


def seasonal_history(workload, models, cost, batch: int, window_s: float,
                     baseline_window_s: float | None = None) -> dict[str, np.ndarray]:
    """Per model ``(days, n_rows, 2)``: each history day's (avg, peak) in-flight load per row.

    A row is one window of ``window_s`` (``baseline_window_s`` None), or one bin of
    ``baseline_window_s``; there are as many rows as the run has windows (and at least as many
    as bins fit in the run), so that window ``i`` reads bin ``i`` as the artifact does rather than
    wrapping around early."""
    from experiments.builder import inflight_estimate
    n_run = max(1, math.ceil(workload.duration_s / window_s))
    if baseline_window_s is None:
        row_s, n_rows = window_s, n_run
    else:
        row_s, n_rows = baseline_window_s, max(n_run, math.ceil(workload.duration_s / baseline_window_s))
    history = {}
    for j, name in enumerate(workload.models):
        prompts = workload.prompt_tokens[workload.model == j]
        days = [np.stack(inflight_estimate(models[name], cost, day[:, 0], prompts, day[:, 1], batch, row_s, n_rows),
                         axis=1) for day in workload.history.get(name, [])]
        if days:
            history[name] = np.stack(days)
    return history


def observed_inflight(requests, models: list[str], window_s: float, n_windows: int,
                      end_s: float) -> dict[str, np.ndarray]:
    """Per model ``(n_windows, 2)``: (avg, peak) requests in flight per window, each request in
    flight from its arrival to its finish (completion or drop); a request still unfinished counts
    until ``end_s``."""
    from policies.load_profile import inflight_windows
    out = {}
    for name in models:
        r = requests[requests["model"] == name]
        arrival = r["arrival_s"].to_numpy(dtype=np.float64)
        finish = np.nan_to_num(r["finish_s"].to_numpy(dtype=np.float64), nan=end_s)
        avg, peak = inflight_windows(arrival, np.maximum(finish - arrival, 0.0), window_s, n_windows)
        out[name] = np.stack([avg, peak], axis=1)
    return out


def oracle_truth(workload, models, cluster, cost, cfg, window_s: float) -> dict[str, np.ndarray]:
    """The oracle's truth: per model ``(n_windows, 2)`` observed (avg, peak) in-flight load per
    window of a pre-pass under :data:`TRUTH_SYSTEM` on the same workload and setup."""
    key = (id(workload), float(window_s), TRUTH_SYSTEM)
    hit = _truth_cache.get(key)
    if hit is not None and hit[0] is workload:
        return hit[1]
    from dataclasses import replace

    from experiments.builder import build_setup, system_config
    from experiments.runner import run_system
    setup = replace(build_setup(cfg), workload=workload, models=models, cluster=cluster, cost=cost)
    result = run_system(setup, system_config(TRUTH_SYSTEM), cfg)
    req = result.requests
    n_windows = max(1, math.ceil(workload.duration_s / window_s))
    end_s = float(np.nanmax(req["finish_s"].to_numpy(dtype=np.float64), initial=workload.duration_s))
    truth = observed_inflight(req, list(workload.models), window_s, n_windows, end_s)
    _truth_cache[key] = (workload, truth)
    return truth
