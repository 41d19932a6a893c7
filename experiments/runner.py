"""Run one system on a built setup and collect its tables.

A run has two steps: :func:`prepass_inputs`, which runs the pre-pass a system's predictor needs (the
oracle's truth, observed in a run of the same workload; nothing for other predictors), and the run
itself, whose policies the builder instantiates with that output (:func:`build_system_bundle`).
"""

from __future__ import annotations

import math
import sys
from typing import Any, cast

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from warmsim.experiments.builder import (
    CONF_DIR,
    Setup,
    build_bundle,
    build_cluster,
    build_engine,
    build_sim,
    check_system,
    named_policies,
    predictor_needs,
    system_cluster,
    system_config,
)
from warmsim.experiments.predictor_inputs import observed_inflight
from warmsim.experiments.results import RunResult
from warmsim.experiments.summary import summarize
from warmsim.sim.errors import UserError
from warmsim.sim.simulation import Simulation

__all__ = ["RunResult", "build_system_bundle", "oracle_truth", "prepass_inputs", "run_system", "truth_system"]

#: The system ``truth_from: static`` observes (``experiments/conf/system/static.yaml``).
STATIC_SYSTEM = "static"

#: Pre-pass truths per (workload, window, pre-pass system): a sweep's systems share one workload.
_truth_cache: dict[tuple, tuple[Any, dict[str, np.ndarray]]] = {}


def _progress(cfg, total: int, desc: str):
    mode = str(cfg.get("progress", "auto")).lower()
    show = sys.stderr.isatty() if mode == "auto" else mode in ("true", "1", "yes")
    if not show or total < 5000:
        return None, None
    from tqdm import tqdm
    bar = tqdm(total=total, desc=desc, unit="req", leave=False)
    state = {"last": 0}

    def tick(rid: int) -> None:
        bar.update(rid - state["last"])
        state["last"] = rid

    return tick, bar


def truth_system(scfg, window_s: float, truth_from: str):
    """The system config whose run gives the oracle its truth: ``scfg`` with the CSP (same window)
    in the oracle's place (``"self"``), or ``static``."""
    if truth_from == "static":
        return system_config(STATIC_SYSTEM)
    if truth_from != "self":
        raise UserError(f"system {scfg.get('name', '?')}: predictor.truth_from must be 'self' or 'static', "
                        f"got {truth_from!r}")
    out = OmegaConf.create(OmegaConf.to_container(scfg, resolve=True))
    csp = OmegaConf.load(CONF_DIR / "predictor" / "csp.yaml")
    csp.window_s = float(window_s)
    out.predictor = csp
    out.name = f"{scfg.get('name', 'system')} (oracle truth pre-pass)"
    return out


def oracle_truth(setup: Setup, scfg, cfg, window_s: float, truth_from: str = "self") -> dict[str, np.ndarray]:
    """The oracle's truth: per model ``(n_windows, 2)`` observed (avg, peak) in-flight load per
    window of a pre-pass (:func:`truth_system`) on ``setup``'s workload, models, cluster and cost
    (cached per workload, window and pre-pass system)."""
    workload = setup.workload
    prepass = truth_system(scfg, window_s, truth_from)
    key = (id(workload), float(window_s), repr(OmegaConf.to_container(prepass, resolve=True)))
    hit = _truth_cache.get(key)
    if hit is not None and hit[0] is workload:
        return hit[1]
    # the run's own workload, models, cluster and cost; engine and sim knobs (faults checked against
    # the config's cluster) from cfg, without building a second workload
    pre = Setup(workload, setup.models, setup.cluster, setup.cost, build_engine(cfg),
                build_sim(cfg, build_cluster(cfg, setup.cost)))
    req = run_system(pre, prepass, cfg).requests
    n_windows = max(1, math.ceil(workload.duration_s / window_s))
    end_s = float(np.nanmax(req["finish_s"].to_numpy(dtype=np.float64), initial=workload.duration_s))
    truth = observed_inflight(req, list(workload.models), window_s, n_windows, end_s)
    _truth_cache[key] = (workload, truth)
    return truth


def prepass_inputs(setup: Setup, scfg, cfg) -> dict[str, Any]:
    """What a pre-pass observes for ``scfg``'s predictor, as its constructor's keyword arguments:
    ``truth`` for a predictor that declares it in ``needs`` (the oracle), nothing otherwise."""
    if not OmegaConf.is_config(scfg):
        scfg = OmegaConf.create(scfg)
    pred = scfg.get("predictor") if OmegaConf.is_dict(scfg) else None
    if pred is None or "truth" not in predictor_needs(pred):
        return {}
    return {"truth": oracle_truth(setup, scfg, cfg, float(pred.window_s), str(pred.get("truth_from", "self")))}


def build_system_bundle(setup: Setup, scfg, cfg):
    """``scfg``'s policies on ``setup``: the pre-pass its predictor needs first, then the builder."""
    from warmsim.experiments.confpath import add_import_paths
    add_import_paths()  # own policies by import path: modules in a user config directory
    scfg = OmegaConf.create(scfg) if not OmegaConf.is_config(scfg) else scfg.copy()
    if OmegaConf.is_dict(scfg):  # policies given by name resolved first: the pre-pass reads the predictor's
        check_system(scfg, str(scfg.get("name", "?")))
        scfg = named_policies(scfg)
    return build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg,
                        prepass=prepass_inputs(setup, scfg, cfg))


def run_system(setup: Setup, scfg, cfg) -> RunResult:
    """Build ``scfg``'s bundle on ``setup`` (:func:`build_system_bundle`), replay the workload, summarise."""
    import time
    t0 = time.perf_counter()
    bundle = build_system_bundle(setup, scfg, cfg)
    tick, bar = _progress(cfg, len(setup.workload), bundle.name)
    sim = Simulation(setup.workload, setup.models, system_cluster(scfg, setup.cluster), setup.cost, bundle,
                     setup.engine, setup.sim,
                     progress=tick)
    rec = sim.run()
    if bar is not None:
        bar.close()
    req = rec.requests_table()
    models = list(setup.workload.models)
    summary = summarize(bundle.name, req, rec.counters, duration_s=setup.workload.duration_s, end_s=rec.end_s,
                        gpu_seconds=rec.gpu_seconds, prediction_log=rec.prediction_log,
                        slo_ttft_s=float(cfg.slo.ttft_s), slo_tpot_s=float(cfg.slo.tpot_s),
                        unfinished_ttft_s=float(cfg.metrics.unfinished_ttft_s),
                        fast_ttft_s=float(cfg.metrics.fast_ttft_s), profile=setup.cost.name,
                        measured=bool(setup.cost.measured), models=models,
                        warmup_s=float(cfg.metrics.get("warmup_s", 0.0)),
                        prediction_window_s=bundle.predictor.window_s if bundle.predictor is not None else None,
                        gpus_visible=len(sim.cluster.gpus))
    req.insert(0, "system", bundle.name)
    tl = rec.timeline_table()
    tl.insert(0, "system", bundle.name)
    preds = pd.DataFrame(rec.prediction_log, columns=["model", "window", "pred_avg", "pred_peak", "obs_avg",
                                                      "obs_peak"])
    preds.insert(0, "system", bundle.name)
    steps = None
    if setup.engine.record_steps:
        steps = rec.steps_table()
        steps.insert(0, "system", bundle.name)
    scfg_plain = cast(dict, OmegaConf.to_container(scfg, resolve=True)) if OmegaConf.is_config(scfg) else dict(scfg)
    return RunResult(bundle.name, summary, req, tl, preds, time.perf_counter() - t0, len(sim.cluster.gpus), tuple(sim.initial_lines),
                     rec.events, scfg_plain, tuple(rec.fault_log), steps, tuple(sim.mechanism_lines()))
