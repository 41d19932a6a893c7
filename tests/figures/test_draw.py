"""Each figure's draw function writes a non-empty PNG from small hand-made tables."""

import pandas as pd
import pytest

from tests.figures import synthetic
from warmsim.figures import (
    fig_ablation,
    fig_gpu_cost,
    fig_max_rps,
    fig_memory_timeline,
    fig_prediction,
    fig_tail_ttft,
    fig_ttft_cdf,
)


def _png(path):
    assert path.is_file() and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tail_ttft(tmp_path):
    out = tmp_path / "t.png"
    nums = fig_tail_ttft.draw(synthetic.summary(), out)
    _png(out)
    assert nums["p99_ratio_sllm_over_warmserve"]["ALL"] == pytest.approx(100 * 2 / 4)
    assert set(nums["p99_ttft_s"]) == set(synthetic.SYSTEMS)


def test_ttft_cdf_counts_dropped_in_denominator(tmp_path):
    out = tmp_path / "c.png"
    req = synthetic.requests()
    nums = fig_ttft_cdf.draw(req, out)
    _png(out)
    r = req[req.system == "sllm"]
    assert nums["share_ttft_under_fast"]["sllm"] == pytest.approx((r.ttft_s < 0.1).sum() / len(r))


def test_max_rps(tmp_path):
    sweep = pd.concat([synthetic.summary(rps=r, scale=r / 10) for r in (10, 20, 40)], ignore_index=True)
    out = tmp_path / "m.png"
    nums = fig_max_rps.draw(sweep, out, criterion="slo", slo_min=0.99)
    _png(out)
    # slo = 1 - 0.002 * i * rps/10: static (i=0) always meets; warmserve (i=3) 0.994 at 10, 0.988 at 20
    assert nums["max_rps"]["static"] == 40 and nums["max_rps"]["warmserve"] == 10
    # sllm (i=1) 0.998, 0.996, 0.992: passes everywhere; muxserve (i=2) 0.996, 0.992, 0.984 -> [20, 40);
    # warmserve [10, 20): interval [10/40, 20/20]
    assert nums["first_fail_rps"] == {"static": None, "sllm": None, "muxserve": 40.0, "warmserve": 20.0}
    assert nums["warmserve_over_muxserve_interval"] == [pytest.approx(0.25), pytest.approx(1.0)]
    assert nums["warmserve_over_muxserve"] == pytest.approx(0.5)
    p99 = fig_max_rps.max_rps(sweep, "p99", p99_limit_s=1.0)
    assert p99["sllm"] == 0 and p99["static"] == 40


def test_max_rps_is_the_largest_passing_rate_and_lists_lower_failures():
    rows = [synthetic.summary(rps=r, scale=r / 10) for r in (5, 10, 20)]
    sweep = pd.concat(rows, ignore_index=True)
    low = (sweep.system == "muxserve") & (sweep.rps == 5)
    sweep.loc[low, "slo_attainment"] = 0.5  # fails at 5, passes at 10 and 20
    sweep.loc[(sweep.system == "muxserve") & (sweep.rps > 5), "slo_attainment"] = 1.0
    best = fig_max_rps.max_rps(sweep, "slo", slo_min=0.99)
    assert best["muxserve"] == 20
    assert fig_max_rps.fails_below(sweep, best, "slo", slo_min=0.99)["muxserve"] == [5.0]


def test_ablation_marks_failed_systems(tmp_path):
    systems = ["warmserve", "warmserve_disable_prewarm", "warmserve_window3"]
    out = tmp_path / "a.png"
    nums = fig_ablation.draw(synthetic.summary(systems[:2]), out, systems=systems, failed=["warmserve_window3"])
    _png(out)
    assert nums["share_ttft_under_fast"] == {"warmserve": 1.0, "warmserve_disable_prewarm": pytest.approx(0.9)}
    assert nums["failed"] == ["warmserve_window3"]


def test_ablation_draws_the_start_affected_metrics_of_each_regime(tmp_path):
    systems = ["warmserve", "warmserve_disable_prewarm"]
    plain, bursty = synthetic.summary(systems), synthetic.summary(systems[::-1])  # i = 0 for the other system
    out = tmp_path / "a2.png"
    nums = fig_ablation.draw({"trace": plain, "bursty": bursty}, out, systems=systems)
    _png(out)
    assert list(nums["regimes"]) == ["trace", "bursty"]
    ws, dp = nums["regimes"]["trace"]["warmserve"], nums["regimes"]["trace"]["warmserve_disable_prewarm"]
    assert (ws["share_all"], ws["share_start"], ws["hit_ratio"], ws["start_requests"]) == (1.0, 0.5, 1.0, 10)
    assert dp["share_start"] == pytest.approx(0.4) and dp["hit_ratio"] == pytest.approx(0.8)
    assert dp["p99_start_s"] == pytest.approx(2 * dp["p99_all_s"])
    assert nums["regimes"]["bursty"]["warmserve_disable_prewarm"]["hit_ratio"] == 1.0
    # a summary without the start columns (an older run) still draws, the start values empty
    old = plain.drop(columns=["start_hit_ratio", "start_requests", "start_ttft_p99_s", "start_ttft_fast"])
    nums = fig_ablation.draw(old, tmp_path / "a3.png", systems=systems)
    assert nums["regimes"][""]["warmserve"]["hit_ratio"] != nums["regimes"][""]["warmserve"]["hit_ratio"]


def test_prediction(tmp_path):
    out = tmp_path / "p.png"
    nums = fig_prediction.draw(synthetic.predictions(), synthetic.summary(["warmserve"]), out, window_s=300)
    _png(out)
    assert nums["pred_acc_avg"] == pytest.approx(0.9) and nums["windows"] == 4


def test_memory_timeline(tmp_path):
    out = tmp_path / "mem.png"
    nums = fig_memory_timeline.draw(synthetic.timeline(), out, gpus_per_node=2)
    _png(out)
    assert nums["instances"] == 2 and nums["replicas"] == 2 and nums["evictions"] == 1


def test_memory_grid_takes_last_state_and_splits_weights():
    tl = synthetic.timeline()
    mem = tl[tl.kind == "memory"]
    import numpy as np
    g = fig_memory_timeline.memory_grid(mem, 2, np.array([10.0, 55.0]))
    G = 2**30
    assert g["weights"][0].tolist() == [13 * G, 0]       # 40 - 0 - 27, then only prewarmed
    assert g["prewarm"][0].tolist() == [0, 13 * G]
    assert g["kv"][1].tolist() == [0, 47 * G]


def test_gpu_cost(tmp_path):
    sweep = pd.concat([synthetic.summary(rps=r, scale=r / 10) for r in (10, 20)], ignore_index=True)
    out = tmp_path / "g.png"
    nums = fig_gpu_cost.draw(sweep, out, highlight_rps=10)
    _png(out)
    assert nums["at_highlight"]["static"]["mean_gpus_busy"] == 4.0


def test_coldstart_systems_reads_scenarios_and_plots_each_system(tmp_path):
    from warmsim.figures import fig_coldstart_systems as f
    assert f.scenario_of({"cluster": {"nodes": 64, "gpus_per_node": 8}, "workload": {}}) == "scale512"
    assert f.scenario_of({"cluster": {"nodes": 2, "gpus_per_node": 8}, "workload": {"burstiness_cv": 4.0}}) == "bursty"
    assert f.scenario_of({"cluster": {"nodes": 2, "gpus_per_node": 8, "nic_gbps": 2.0}, "workload": {}}) == "slow_nic"
    assert f.scenario_of({"cluster": {"nodes": 2, "gpus_per_node": 8, "nic_gbps": 25.0}, "workload": {}}) == "paper"
    rows = pd.DataFrame([{"scenario": sc, "system": s, "model": "ALL", "ttft_p99_s": p99, "gpu_hours": gh, "dropped": d,
                          "profile": "h100_eager_analytic"}
                         for sc in ("paper", "scale512")
                         for s, p99, gh, d in (("sllm", 4.0, 4.2, 0), ("hydraserve", 0.2, 5.0, 0), ("prism", 999.0, 2.7, 12))])
    out = tmp_path / "cs.png"
    nums = f.draw(rows, out)
    _png(out)
    assert set(nums) == {"paper", "scale512"}
    assert nums["paper"]["hydraserve"] == {"ttft_p99_s": 0.2, "gpu_hours": 5.0, "dropped": 0}
    assert nums["scale512"]["prism"]["dropped"] == 12
