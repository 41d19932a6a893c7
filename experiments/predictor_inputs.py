"""What a WarmServe predictor is built with: the CSP's seasonal history and the oracle's truth.

A predictor class declares the inputs its constructor needs in ``needs``:

* ``CorrectiveSeasonalPredictor``: ``history``, the (avg, peak) in-flight load of each history day,
  estimated from arrivals and service-time estimates (``policies.load_estimate.inflight_estimate``),
  per window of ``window_s``, or per bin of ``baseline_window_s`` when the config sets it (the
  artifact's 5-minute character-file grid, indexed by window id; see the predictor's docstring).
  The builder computes it from the workload (:func:`workload_inputs`).
* ``OraclePredictor``: ``truth``, the in-flight load the run's requests really produce per window.
  It is observed, not estimated: the runner runs a pre-pass first
  (:func:`warmsim.experiments.runner.prepass_inputs`) that replays the same workload on the same
  cluster and cost model, and measures each request's in-flight interval, arrival to finish, from
  that run's requests table (:func:`observed_inflight`). In-flight load depends on the system (fewer
  instances mean larger batches, longer service and more requests in flight), so by default
  (``truth_from: self``) the pre-pass runs the oracle's own system with the CSP in the oracle's
  place: same autoscaler, same instances, same batches; only prewarm placement may differ.
  ``truth_from: static`` uses the ``static`` system instead (every model sized for its peak at t = 0,
  no start-up waits). Pre-passes are cached per workload, system and window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def workload_inputs(pred, needs, workload, models, cost, cfg) -> dict[str, Any]:
    """The keyword arguments of the ``predictor`` node ``pred`` that come from the workload alone
    (``history`` for the CSP when ``needs`` names it); a pre-pass's (``truth``) are the runner's."""
    if "history" not in needs:
        return {}
    bin_s = pred.get("baseline_window_s")
    return {"history": seasonal_history(workload, models, cost, int(cfg.sim.service_estimate_batch),
                                        float(pred.window_s), None if bin_s is None else float(bin_s))}


def seasonal_history(workload, models, cost, batch: int, window_s: float,
                     baseline_window_s: float | None = None) -> dict[str, np.ndarray]:
    """Per model ``(days, n_rows, 2)``: each history day's (avg, peak) in-flight load per row.

    A row is one window of ``window_s`` (``baseline_window_s`` None), or one bin of
    ``baseline_window_s``; there are as many rows as the run has windows (and at least as many
    as bins fit in the run), so that window ``i`` reads bin ``i`` as the artifact does rather than
    wrapping around early."""
    from warmsim.policies.load_estimate import inflight_estimate
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
    from warmsim.policies.load_profile import inflight_windows
    out = {}
    for name in models:
        r = requests[requests["model"] == name]
        arrival = r["arrival_s"].to_numpy(dtype=np.float64)
        finish = np.nan_to_num(r["finish_s"].to_numpy(dtype=np.float64), nan=end_s)
        avg, peak = inflight_windows(arrival, np.maximum(finish - arrival, 0.0), window_s, n_windows)
        out[name] = np.stack([avg, peak], axis=1)
    return out
