"""summary.csv numbers computed by hand from a 4-request table: TTFT percentiles (numpy's default
linear interpolation) with a dropped request counted as ``unfinished_ttft_s``, mean TPOT, SLO
attainment needing both the TTFT and the TPOT limit, throughput, and the warm-up window.

    request  model  arrival  first token  finish  out  status     TTFT   TPOT = (finish - first) / (out - 1)
    0        a      0.0      0.05         1.05    11   completed  0.05   0.1
    1        a      1.0      1.5          4.5     11   completed  0.5    0.3   (over the 0.2 s TPOT limit)
    2        a      2.0      4.0          5.0     11   completed  2.0    0.1   (over the 1 s TTFT limit)
    3        b      3.0      -            3.0     11   dropped    999    -
"""

import numpy as np
import pandas as pd
import pytest

from warmsim.experiments.summary import summarize
from warmsim.sim.recorder import START_NAMES, STATUS_NAMES

COUNTERS = {"cold_starts": 1, "prewarm_hits": 0, "prewarm_hits_loading": 0, "evictions": 0, "prewarms": 0,
            "instance_starts": 1}


def table() -> pd.DataFrame:
    return pd.DataFrame({
        "request": np.arange(4),
        "model": ["a", "a", "a", "b"],
        "arrival_s": [0.0, 1.0, 2.0, 3.0],
        "prompt_tokens": [10] * 4,
        "output_tokens": [11] * 4,
        "first_token_s": [0.05, 1.5, 4.0, np.nan],
        "finish_s": [1.05, 4.5, 5.0, 3.0],
        "ttft_s": [0.05, 0.5, 2.0, np.nan],
        "status": pd.Categorical.from_codes([1, 1, 1, 2], list(STATUS_NAMES.values())),
        "drop_reason": ["", "", "", "timeout_waiting_for_instance"],
        "start_kind": pd.Categorical.from_codes([2, 0, 0, 0], list(START_NAMES.values())),
        "instance": [1, 1, 1, -1],
        "gpus": ["0", "0", "0", ""],
        "preemptions": np.array([0, 2, 0, 1], dtype=np.int32),
    })


def rows(**kw) -> dict[str, dict]:
    args = dict(duration_s=10.0, end_s=10.0, gpu_seconds=20.0, prediction_log=[], slo_ttft_s=1.0, slo_tpot_s=0.2,
                unfinished_ttft_s=999.0, fast_ttft_s=0.1, profile="constant", measured=False, models=["a", "b"])
    args.update(kw)
    df = summarize("sys", table(), {"a": dict(COUNTERS), "b": dict(COUNTERS)}, **args)
    return {r["model"]: r for r in df.to_dict("records")}


def test_ttft_percentiles_count_a_dropped_request_as_unfinished_ttft():
    r = rows()["ALL"]
    # TTFTs sorted: 0.05, 0.5, 2.0, 999. Linear interpolation at position q/100 x 3:
    # p50 at 1.5 -> 0.5 + 0.5 x 1.5 = 1.25; p90 at 2.7 -> 2 + 0.7 x 997 = 699.9;
    # p95 at 2.85 -> 2 + 0.85 x 997 = 849.45; p99 at 2.97 -> 2 + 0.97 x 997 = 969.09.
    assert [r["ttft_p50_s"], r["ttft_p90_s"], r["ttft_p95_s"], r["ttft_p99_s"]] == pytest.approx(
        [1.25, 699.9, 849.45, 969.09], abs=1e-9)
    assert r["ttft_mean_s"] == pytest.approx((0.05 + 0.5 + 2.0 + 999.0) / 4, abs=1e-9)  # 250.3875
    b = rows()["b"]
    assert b["ttft_p50_s"] == b["ttft_p99_s"] == b["ttft_mean_s"] == 999.0
    assert rows(unfinished_ttft_s=600.0)["b"]["ttft_p99_s"] == 600.0


def test_tpot_mean_leaves_dropped_requests_out():
    assert rows()["ALL"]["tpot_mean_s"] == pytest.approx((0.1 + 0.3 + 0.1) / 3, abs=1e-12)
    assert np.isnan(rows()["b"]["tpot_mean_s"])


def test_slo_attainment_needs_both_ttft_and_tpot():
    r = rows()
    # Only request 0 meets both limits: 1 of 4 overall, 1 of 3 for a, 0 of 1 for b.
    assert r["ALL"]["slo_attainment"] == pytest.approx(0.25)
    assert r["a"]["slo_attainment"] == pytest.approx(1 / 3)
    assert r["b"]["slo_attainment"] == 0.0
    # TPOT limit 0.3 s: request 1 (TPOT 0.3, within TTFT) passes too; TTFT limit 2 s: request 2 too.
    assert rows(slo_tpot_s=0.3)["ALL"]["slo_attainment"] == pytest.approx(0.5)
    assert rows(slo_ttft_s=2.0)["ALL"]["slo_attainment"] == pytest.approx(0.5)
    assert rows(slo_ttft_s=2.0, slo_tpot_s=0.3)["ALL"]["slo_attainment"] == pytest.approx(0.75)


def test_counts_throughput_and_the_rest_of_the_row():
    r = rows()["ALL"]
    assert (r["requests"], r["completed"], r["dropped"]) == (4, 3, 1)
    assert r["throughput_rps"] == pytest.approx(3 / 10.0)  # completed only, over the whole run
    assert r["ttft_under_fast"] == pytest.approx(0.25)  # request 0 (0.05 s < 0.1 s)
    assert r["preemptions"] == 3 and r["requests_cold_start"] == 1
    assert r["cold_starts"] == 2 and r["instance_starts"] == 2  # counters summed over the models
    assert r["mean_gpus_busy"] == pytest.approx(2.0) and r["gpu_hours"] == pytest.approx(20.0 / 3600)
    assert np.isnan(rows()["a"]["mean_gpus_busy"])


def test_warmup_leaves_early_arrivals_out_of_request_statistics():
    r = rows(warmup_s=1.5)["ALL"]
    # Requests 2 and 3 remain: TTFTs 2.0 and 999; one completed over 10 - 1.5 = 8.5 s.
    assert (r["requests"], r["completed"], r["dropped"]) == (2, 1, 1)
    assert r["ttft_p50_s"] == pytest.approx((2.0 + 999.0) / 2)
    assert r["slo_attainment"] == 0.0
    assert r["throughput_rps"] == pytest.approx(1 / 8.5)
    assert r["cold_starts"] == 2  # event counters cover the whole run


def test_prefix_hit_ratio_is_cached_over_prompt_tokens_of_the_requests_that_got_a_first_token():
    # cached_tokens 0, 4, 8 of 10-token prompts for the three served requests of model a: 12 / 30;
    # request 3 (b) never got a first token: no prompt tokens prefilled, the ratio is NaN.
    t = table()
    t["cached_tokens"] = np.array([0, 4, 8, 6], dtype=np.int32)
    df = summarize("sys", t, {"a": dict(COUNTERS), "b": dict(COUNTERS)}, duration_s=10.0, end_s=10.0,
                   gpu_seconds=20.0, prediction_log=[], slo_ttft_s=1.0, slo_tpot_s=0.2, unfinished_ttft_s=999.0,
                   fast_ttft_s=0.1, profile="constant", measured=False, models=["a", "b"])
    r = {row["model"]: row for row in df.to_dict("records")}
    assert r["a"]["prefix_hit_ratio"] == pytest.approx(12 / 30)
    assert np.isnan(r["b"]["prefix_hit_ratio"]) and r["ALL"]["prefix_hit_ratio"] == pytest.approx(12 / 30)
    assert np.isnan(rows()["a"]["prefix_hit_ratio"])  # a table without the column (an older run)
