"""Run one system on a built setup and collect its tables."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd

from warmsim.experiments.builder import Setup, build_bundle, system_cluster
from warmsim.experiments.summary import summarize
from warmsim.sim.simulation import Simulation


@dataclass
class RunResult:
    """Tables of one system's run."""

    system: str
    summary: pd.DataFrame
    requests: pd.DataFrame
    timeline: pd.DataFrame
    predictions: pd.DataFrame
    wall_s: float = 0.0
    #: GPUs the system could use (a system may see fewer than the cluster: ``visible_nodes``).
    gpus_visible: int = 0
    #: The instances present from time 0, one line each (model, GPUs, TP, share, cap).
    placement: tuple[str, ...] = ()
    #: SimPy events the run scheduled (``warmsim bench`` reports them per request).
    events: int = 0
    #: The system's resolved config (written to ``systems/<name>.yaml``).
    config: dict | None = None
    #: The faults of the run and what each took: (time, fault, instances, replicas, retried, dropped).
    faults: tuple = ()
    #: One row per engine step (``output.steps``; empty otherwise).
    steps: pd.DataFrame | None = None
    #: What each serving mechanism did (sleep, pipeline, kv_balloon: sim/mechanisms), one line each.
    mechanisms: tuple[str, ...] = ()


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


def run_system(setup: Setup, scfg, cfg) -> RunResult:
    """Build ``scfg``'s bundle on ``setup``, replay the workload, summarise."""
    import time
    t0 = time.perf_counter()
    from warmsim.experiments.confpath import add_import_paths
    add_import_paths()  # own policies by import path: modules in a user config directory
    bundle = build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg)
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
    from omegaconf import OmegaConf
    scfg_plain = OmegaConf.to_container(scfg, resolve=True) if OmegaConf.is_config(scfg) else dict(scfg)
    return RunResult(bundle.name, summary, req, tl, preds, time.perf_counter() - t0, len(sim.cluster.gpus), tuple(sim.initial_lines),
                     rec.events, scfg_plain, tuple(rec.fault_log), steps, tuple(sim.mechanism_lines()))
