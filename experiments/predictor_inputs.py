"""What a WarmServe predictor is built with: the CSP's seasonal history and the oracle's truth.

:func:`predictor_inputs` is called by :func:`warmsim.experiments.builder.build_bundle` for a system's
``predictor`` node and returns the keyword arguments its constructor needs:

* ``CorrectiveSeasonalPredictor``: ``history``, the (avg, peak) in-flight load of each history day,
  estimated from arrivals and service-time estimates (``policies.load_estimate.inflight_estimate``),
  per window of ``window_s``, or per bin of ``baseline_window_s`` when the config sets it (the
  artifact's 5-minute character-file grid, indexed by window id; see the predictor's docstring).
* ``OraclePredictor``: ``truth``, the in-flight load the run's requests really produce per window.
  It is observed, not estimated: a pre-pass replays the same workload on the same cluster and cost
  model and measures each request's in-flight interval, arrival to finish, from that run's
  requests table. In-flight load depends on the system (fewer instances mean larger batches,
  longer service and more requests in flight), so by default (``truth_from: self``) the pre-pass
  runs the oracle's own system with the CSP in the oracle's place: same autoscaler, same instances,
  same batches; only prewarm placement may differ. ``truth_from: static`` uses the ``static``
  system instead (every model sized for its peak at t = 0, no start-up waits). Pre-passes are
  cached per workload, system and window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The system ``truth_from: static`` observes (``experiments/conf/system/static.yaml``).
STATIC_SYSTEM = "static"

_truth_cache: dict[tuple, tuple[Any, dict[str, np.ndarray]]] = {}


def predictor_inputs(scfg, workload, models, cluster, cost, cfg) -> dict[str, Any]:
    """Keyword arguments for instantiating the system config ``scfg``'s ``predictor`` node: what its
    class declares in ``needs`` (``history`` for the CSP, ``truth`` for the oracle, nothing else)."""
    from hydra.utils import get_class
    pred = scfg.predictor
    needs = getattr(get_class(str(pred._target_)), "needs", ())  # a predictor class declares its inputs
    window = float(pred.window_s)
    out: dict[str, Any] = {}
    if "truth" in needs:
        out["truth"] = oracle_truth(scfg, workload, models, cluster, cost, cfg, window,
                                    str(pred.get("truth_from", "self")))
    if "history" in needs:
        bin_s = pred.get("baseline_window_s")
        out["history"] = seasonal_history(workload, models, cost, int(cfg.sim.service_estimate_batch),
                                          window, None if bin_s is None else float(bin_s))
    return out


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


def truth_system(scfg, window_s: float, truth_from: str):
    """The system config whose run gives the oracle its truth: ``scfg`` with the CSP (same window)
    in the oracle's place (``"self"``), or ``static``."""
    from omegaconf import OmegaConf

    from warmsim.experiments.builder import CONF_DIR, system_config
    if truth_from == "static":
        return system_config(STATIC_SYSTEM)
    if truth_from != "self":
        raise ValueError(f"truth_from must be 'self' or 'static', got {truth_from!r}")
    out = OmegaConf.create(OmegaConf.to_container(scfg, resolve=True))
    csp = OmegaConf.load(CONF_DIR / "predictor" / "csp.yaml")
    csp.window_s = float(window_s)
    out.predictor = csp
    out.name = f"{scfg.get('name', 'system')} (oracle truth pre-pass)"
    return out


def oracle_truth(scfg, workload, models, cluster, cost, cfg, window_s: float,
                 truth_from: str = "self") -> dict[str, np.ndarray]:
    """The oracle's truth: per model ``(n_windows, 2)`` observed (avg, peak) in-flight load per
    window of a pre-pass (:func:`truth_system`) on the same workload and setup."""
    from omegaconf import OmegaConf

    from warmsim.experiments.builder import Setup, build_cluster, build_engine, build_sim
    from warmsim.experiments.runner import run_system
    prepass = truth_system(scfg, window_s, truth_from)
    key = (id(workload), float(window_s), repr(OmegaConf.to_container(prepass, resolve=True)))
    hit = _truth_cache.get(key)
    if hit is not None and hit[0] is workload:
        return hit[1]
    # the run's own workload, models, cluster and cost; engine and sim knobs (faults checked against
    # the config's cluster) from cfg, without building a second workload
    setup = Setup(workload, models, cluster, cost, build_engine(cfg), build_sim(cfg, build_cluster(cfg, cost)))
    req = run_system(setup, prepass, cfg).requests
    n_windows = max(1, math.ceil(workload.duration_s / window_s))
    end_s = float(np.nanmax(req["finish_s"].to_numpy(dtype=np.float64), initial=workload.duration_s))
    truth = observed_inflight(req, list(workload.models), window_s, n_windows, end_s)
    _truth_cache[key] = (workload, truth)
    return truth
