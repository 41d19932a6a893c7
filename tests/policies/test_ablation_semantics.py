"""WarmServe's ablation systems carry the artifact's flag semantics (docs/warmserve.md, "Ablations as
the artifact's flags"): what each system config turns on and off, the window ablations' baseline
grid, the oracle's observed truth, and the note for a prediction window that never closes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hydra import initialize_config_dir

from tests.small_setup import small_setup
from warmsim.experiments.builder import CONF_DIR, build_bundle, system_config
from warmsim.experiments.outputs import comparison_table
from warmsim.experiments.predictor_inputs import observed_inflight, seasonal_history
from warmsim.experiments.runner import build_system_bundle, oracle_truth
from warmsim.experiments.summary import summarize
from warmsim.policies.load_estimate import inflight_estimate
from warmsim.policies.load_profile import inflight_windows
from warmsim.policies.warmserve import CorrectiveSeasonalPredictor, KVReservePolicy, OraclePredictor, RoundRobinPlacer


@pytest.fixture(scope="module")
def small():
    return small_setup(600)


def bundle(small, name):
    cfg, setup = small
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config(name)
    return build_system_bundle(setup, scfg, cfg)  # the oracle's pre-pass first, then the builder


# ---- what each flag turns on and off -------------------------------------------------------------

def test_disable_prewarm_keeps_weights_and_vmm_pool_without_prediction(small):
    b = bundle(small, "warmserve_disable_prewarm")
    assert b.predictor is None and b.placer is None and b.kv_policy is None
    assert b.keep_weights_on_stop and b.memswitch == "vmm_pool" and b.evict_on_activate
    assert b.activator.miss_gpus != "first_free"  # unified memory: the least-overlap miss


def test_default_mode_prewarms_nothing_of_the_model(small):
    b = bundle(small, "warmserve_default_mode")
    assert b.predictor is None and b.placer is None and b.kv_policy is None
    assert not b.keep_weights_on_stop and b.memswitch == "free_malloc"
    assert b.activator.miss_gpus == "first_free"
    assert b.device_prewarm and b.engine_prewarm


def test_no_placement_is_the_artifact_round_robin(small):
    b = bundle(small, "warmserve_no_placement")
    assert isinstance(b.placer, RoundRobinPlacer)
    assert b.placer.artifact_loop and b.placer.order == "config"
    assert b.activator.miss_gpus == "first_free"
    assert isinstance(b.kv_policy, KVReservePolicy) and isinstance(b.predictor, CorrectiveSeasonalPredictor)


def test_kv_lending_is_never_given_back_by_default(small):
    assert bundle(small, "warmserve").kv_policy.give_back is False
    assert bundle(small, "warmserve_kv_give_back").kv_policy.give_back is True
    assert bundle(small, "warmserve_no_kv_reserve").kv_policy is None


@pytest.mark.parametrize("name,window", [("warmserve_window3", 180.0), ("warmserve_window10", 600.0),
                                         ("warmserve_window40", 2400.0)])
def test_window_ablations_keep_the_5_min_grid(small, name, window):
    p = bundle(small, name).predictor
    assert p.window_s == window and p.baseline_window_s == 300.0
    assert bundle(small, "warmserve").predictor.baseline_window_s is None


# ---- the baseline grid -----------------------------------------------------------------------------

def test_seasonal_history_on_the_5_min_grid_is_indexed_by_window_id(small):
    cfg, setup = small
    wl, batch = setup.workload, int(cfg.sim.service_estimate_batch)
    name = wl.models[0]
    day = wl.history[name][0]
    prompts = wl.prompt_tokens[wl.model == 0]
    # 600-s run, 3-min windows: 4 windows (0..3) read 5-min bins 0..3 (not 3-min rows, no early wrap)
    h = seasonal_history(wl, setup.models, setup.cost, batch, 180.0, 300.0)[name]
    assert h.shape[1] == math.ceil(600 / 180) == 4
    avg, peak = inflight_estimate(setup.models[name], setup.cost, day[:, 0], prompts, day[:, 1], batch, 300.0, 4)
    assert np.allclose(h[0, :, 0], avg) and np.allclose(h[0, :, 1], peak)
    p = CorrectiveSeasonalPredictor(180.0, {name: h}, baseline_window_s=300.0)
    assert p.predict(name, 3) == pytest.approx((max(h[:, 3, 0].mean(), 0), max(h[:, 3, 1].mean(), 0)))
    # 40-min windows: window 0 reads bin 0 for the whole run
    h40 = seasonal_history(wl, setup.models, setup.cost, batch, 2400.0, 300.0)[name]
    assert h40.shape[1] == 2 and np.allclose(h40[0, :, 0], avg[:2])
    # without the grid, rows are windows of the predictor's own length
    own = seasonal_history(wl, setup.models, setup.cost, batch, 180.0)[name]
    a3, _ = inflight_estimate(setup.models[name], setup.cost, day[:, 0], prompts, day[:, 1], batch, 180.0, 4)
    assert np.allclose(own[0, :, 0], a3)


def test_baseline_window_must_be_positive():
    with pytest.raises(ValueError):
        CorrectiveSeasonalPredictor(300.0, baseline_window_s=0.0)


# ---- the oracle's truth ----------------------------------------------------------------------------

def test_observed_inflight_by_hand():
    req = pd.DataFrame({"model": ["a", "a", "b", "a"], "arrival_s": [0.0, 5.0, 1.0, 12.0],
                        "finish_s": [10.0, 15.0, 2.0, np.nan]})
    got = observed_inflight(req, ["a", "b"], 10.0, 2, end_s=20.0)
    # a: [0,10) + [5,15) + [12,20): window 0 area 10 + 5 = 15, peak 2; window 1 area 5 + 8 = 13, peak 2
    assert got["a"] == pytest.approx(np.array([[1.5, 2.0], [1.3, 2.0]]))
    assert got["b"] == pytest.approx(np.array([[0.1, 1.0], [0.0, 0.0]]))


def _observed(result, n_windows=2, window_s=300.0):
    req = result.requests
    out = {}
    for name in req["model"].unique():
        r = req[req["model"] == name]
        avg, peak = inflight_windows(r["arrival_s"].to_numpy(), (r["finish_s"] - r["arrival_s"]).to_numpy(),
                                     window_s, n_windows)
        out[name] = (avg, peak)
    return out


def test_oracle_truth_is_observed_in_its_own_system_with_the_csp(small):
    cfg, setup = small
    b = bundle(small, "warmserve_oracle")
    assert isinstance(b.predictor, OraclePredictor) and b.predictor.truth_from == "self"
    from warmsim.experiments.runner import run_system
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        csp_run = run_system(setup, system_config("warmserve"), cfg)  # warmserve_oracle = warmserve + oracle
    seen = _observed(csp_run)
    for name, (avg, peak) in seen.items():
        for w in range(2):
            assert b.predictor.predict(name, w) == pytest.approx((avg[w], peak[w]))
    # cached: a second build reuses the same arrays
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config("warmserve_oracle")
    t1 = oracle_truth(setup, scfg, cfg, 300.0)
    t2 = oracle_truth(setup, scfg, cfg, 300.0)
    assert t1 is t2


def test_oracle_truth_from_static(small):
    cfg, setup = small
    from warmsim.experiments.runner import run_system
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config("warmserve_oracle")
        static = run_system(setup, system_config("static"), cfg)
    truth = oracle_truth(setup, scfg, cfg, 300.0, "static")
    for name, (avg, peak) in _observed(static).items():
        assert truth[name] == pytest.approx(np.stack([avg, peak], axis=1))
    with pytest.raises(ValueError):
        OraclePredictor({}, truth_from="future")


# ---- a window that cannot close ----------------------------------------------------------------------

def _summary(log, window):
    req = pd.DataFrame({"model": ["m"], "arrival_s": [0.0], "prompt_tokens": [10], "output_tokens": [5],
                        "first_token_s": [0.05], "finish_s": [0.5], "ttft_s": [0.05],
                        "status": pd.Categorical(["completed"]), "start_kind": ["warm"], "preemptions": [0]})
    counters = {"m": {k: 0 for k in ("cold_starts", "prewarm_hits", "prewarm_hits_loading", "evictions",
                                     "prewarms", "instance_starts")}}
    return summarize("sys", req, counters, duration_s=1200, end_s=1200, gpu_seconds=1.0, prediction_log=log,
                     slo_ttft_s=1, slo_tpot_s=1, unfinished_ttft_s=999, fast_ttft_s=0.1, profile="p",
                     measured=False, models=["m"], prediction_window_s=window)


def test_unclosed_window_is_reported():
    s = _summary([], 2400.0)
    assert s.set_index("model").loc["ALL", "pred_windows"] == 0
    assert "sys: no prediction window closed within the run" in comparison_table(s)
    s = _summary([("m", 0, 1.0, 2.0, 1.0, 2.0), ("m", 1, 1.0, 2.0, 1.0, 2.0)], 300.0)
    assert s.set_index("model").loc["ALL", "pred_windows"] == 2
    assert "no prediction window closed" not in comparison_table(s)
    s = _summary([], None)  # no predictor: blank, no note
    assert np.isnan(s.set_index("model").loc["ALL", "pred_windows"])
    assert "no prediction window closed" not in comparison_table(s)


# ---- keep-warm under --disable-prewarm, through the simulator ----------------------------------------

@pytest.mark.parametrize("name,hits,cold", [("warmserve_disable_prewarm", 1, 1), ("warmserve_default_mode", 0, 2)])
def test_disable_prewarm_rehits_the_weights_a_stopped_instance_left(name, hits, cold):
    from tests.sim.helpers import cluster, cost, model, workload
    from warmsim.sim.simulation import Simulation
    # one request, a long idle gap (the autoscaler stops the instance after its 5 s protection),
    # then another request for the same model
    wl = workload([0.0, 120.0], [10, 10], [2, 2], duration=121.0)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config(name)
    b = build_bundle(scfg, wl, {"a": model()}, cluster(gpus=2), cost(), None)
    s = Simulation(wl, {"a": model()}, cluster(gpus=2), cost(), b)
    s.run()
    c = s.recorder.counters["a"]
    assert c["instance_starts"] == 2 and c["prewarms"] == 0
    assert c["prewarm_hits"] == hits and c["cold_starts"] == cold
