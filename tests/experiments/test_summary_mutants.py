"""summary.csv, the columns the hand-computed table of test_summary_exact.py leaves out, each computed by
hand (written for the mutants of experiments/summary.py that survived it; docs/testing.md).

Same 4 requests as test_summary_exact.py unless a test says otherwise; counters differ per model and
per column so that a value taken from the wrong model or column shows:

    counter               a    b    ALL
    cold_starts           1   10     11
    prewarm_hits          2   20     22
    prewarm_hits_loading  3   30     33
    evictions             4   40     44
    prewarms              5   50     55
    instance_starts       6   60     66

Prediction log (model, window, predicted avg, predicted peak, observed avg, observed peak), relative
error |p - o| / max(o, 1):

    a  w0  2 3  2 4    avg error 0     peak error 1/4
    a  w1  1 6  2 4    avg error 1/2   peak error 1/2
    b  w0  3 3  2 2    avg error 1/2   peak error 1/2

    accuracy = 1 - mean error: a (0.75, 0.625), b (0.5, 0.5), ALL pooled (1 - 1/3, 1 - 1.25/3)
    windows: a {0, 1} = 2, b {0} = 1, ALL {0, 1} = 2
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from tests.experiments.test_summary_exact import table
from warmsim.experiments.summary import COLUMNS, summarize

KEYS = ["cold_starts", "prewarm_hits", "prewarm_hits_loading", "evictions", "prewarms", "instance_starts"]
COUNTERS = {"a": {k: i + 1 for i, k in enumerate(KEYS)}, "b": {k: 10 * (i + 1) for i, k in enumerate(KEYS)}}
LOG = [("a", 0, 2, 3, 2, 4), ("a", 1, 1, 6, 2, 4), ("b", 0, 3, 3, 2, 2)]


def summary(req=None, models=("a", "b"), counters=None, **kw) -> pd.DataFrame:
    args = dict(duration_s=10.0, end_s=10.0, gpu_seconds=20.0, prediction_log=[], slo_ttft_s=1.0, slo_tpot_s=0.2,
                unfinished_ttft_s=999.0, fast_ttft_s=0.1, profile="h100_eager_analytic", measured=True,
                models=list(models))
    args.update(kw)
    counters = counters or {m: dict(COUNTERS[m]) for m in models}
    return summarize("sys", table() if req is None else req, counters, **args)


def rows(**kw) -> dict[str, dict]:
    return {r["model"]: r for r in summary(**kw).to_dict("records")}


def test_the_columns_are_the_contract_in_order_with_system_model_and_profile():
    df = summary()
    assert list(df.columns) == COLUMNS
    assert list(df.model) == ["a", "b", "ALL"]
    assert list(df.system) == ["sys"] * 3
    assert list(df.profile) == ["h100_eager_analytic"] * 3 and list(df.profile_measured) == [True] * 3
    assert list(summary(gpus_visible=8).gpus_visible) == [8] * 3  # the GPUs the system may use


def test_event_counters_are_per_model_and_summed_in_the_all_row():
    r = rows()
    for k in KEYS:
        assert (r["a"][k], r["b"][k], r["ALL"][k]) == (COUNTERS["a"][k], COUNTERS["b"][k],
                                                        COUNTERS["a"][k] + COUNTERS["b"][k]), k


def test_one_model_run_sums_its_own_counters():
    req = table()
    req = req[req.model == "a"].reset_index(drop=True)
    r = rows(req=req, models=("a",))
    assert [r["ALL"][k] for k in KEYS] == [1, 2, 3, 4, 5, 6]
    assert r["ALL"]["requests"] == r["a"]["requests"] == 3


def test_gpu_cost_columns_only_in_the_all_row():
    r = rows()
    assert r["ALL"]["gpu_hours"] == pytest.approx(20.0 / 3600)
    assert np.isnan(r["a"]["gpu_hours"]) and np.isnan(r["b"]["gpu_hours"])
    assert np.isnan(r["a"]["mean_gpus_busy"]) and np.isnan(r["b"]["mean_gpus_busy"])


def test_prediction_accuracy_per_model_and_pooled():
    r = rows(prediction_log=LOG, prediction_window_s=300.0)
    assert (r["a"]["pred_acc_avg"], r["a"]["pred_acc_peak"]) == pytest.approx((0.75, 0.625))
    assert (r["b"]["pred_acc_avg"], r["b"]["pred_acc_peak"]) == pytest.approx((0.5, 0.5))
    assert (r["ALL"]["pred_acc_avg"], r["ALL"]["pred_acc_peak"]) == pytest.approx((1 - 1 / 3, 1 - 1.25 / 3))
    assert (r["a"]["pred_windows"], r["b"]["pred_windows"], r["ALL"]["pred_windows"]) == (2, 1, 2)


def test_pred_windows_blank_without_a_predictor_zero_when_no_window_closed():
    no_pred = rows()  # no window length, empty log: a system without a predictor
    assert all(np.isnan(no_pred[m]["pred_windows"]) for m in ("a", "b", "ALL"))
    assert all(np.isnan(no_pred[m]["pred_acc_avg"]) and np.isnan(no_pred[m]["pred_acc_peak"]) for m in no_pred)
    none_closed = rows(prediction_window_s=600.0)  # a predictor whose window is longer than the run
    assert [none_closed[m]["pred_windows"] for m in ("a", "b", "ALL")] == [0, 0, 0]
    log_only = rows(prediction_log=LOG)  # a log without a window length still counts its windows
    assert [log_only[m]["pred_windows"] for m in ("a", "b", "ALL")] == [2, 1, 2]


def test_status_as_plain_codes_gives_the_same_row_as_the_categorical():
    req = table()
    plain = req.assign(status=req["status"].cat.codes.to_numpy())
    pd.testing.assert_frame_equal(summary(req=plain), summary())


def two_token_table() -> pd.DataFrame:
    """Requests with 1 and 2 output tokens (TPOT = (finish - first) / max(out - 1, 1)):

        0  out 2  first 0.1  finish 0.4   TTFT 0.1  TPOT 0.3 / 1 = 0.3 (over the 0.2 s limit)
        1  out 1  first 0.2  finish 0.2   TTFT 0.2  no TPOT (a single token)
        2  out 3  first 0.3  finish 0.5   TTFT 0.3  TPOT 0.2 / 2 = 0.1
    """
    req = table().iloc[:3].copy()
    req["output_tokens"] = [2, 1, 3]
    req["arrival_s"] = [0.0, 0.0, 0.0]
    req["first_token_s"] = [0.1, 0.2, 0.3]
    req["ttft_s"] = [0.1, 0.2, 0.3]
    req["finish_s"] = [0.4, 0.2, 0.5]
    return req


def test_tpot_divides_by_output_minus_one_and_leaves_single_token_requests_out():
    r = rows(req=two_token_table(), models=("a",))["a"]
    assert r["tpot_mean_s"] == pytest.approx((0.3 + 0.1) / 2)
    # SLO: request 0 fails on TPOT (0.3 > 0.2), request 1 has no TPOT to fail, request 2 passes.
    assert r["slo_attainment"] == pytest.approx(2 / 3)


def test_fast_share_is_strictly_under_the_threshold():
    assert rows(fast_ttft_s=0.05)["ALL"]["ttft_under_fast"] == 0.0  # request 0's TTFT is 0.05 exactly
    assert rows(fast_ttft_s=0.0501)["ALL"]["ttft_under_fast"] == pytest.approx(0.25)


def test_rates_over_a_span_shorter_than_a_second_and_blank_over_no_span():
    r = rows(end_s=0.5)["ALL"]
    assert r["throughput_rps"] == pytest.approx(3 / 0.5) and r["mean_gpus_busy"] == pytest.approx(20.0 / 0.5)
    r = rows(end_s=0.0)["ALL"]
    assert np.isnan(r["throughput_rps"]) and np.isnan(r["mean_gpus_busy"])


def test_a_model_without_measured_requests_has_blank_statistics_and_no_numpy_warnings():
    # Warm-up past every arrival of b (3.0) and a (<= 2.0): no request is measured.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = rows(warmup_s=5.0)
    for m in ("a", "b", "ALL"):
        assert r[m]["requests"] == 0 and r[m]["completed"] == 0
        for col in ("ttft_p50_s", "ttft_p90_s", "ttft_p95_s", "ttft_p99_s", "ttft_mean_s", "tpot_mean_s",
                    "slo_attainment", "ttft_under_fast"):
            assert np.isnan(r[m][col]), (m, col)
    assert r["ALL"]["throughput_rps"] == 0.0  # no completion over 10 - 5 = 5 s
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = rows()["b"]  # b's one request was dropped: no TPOT
    assert np.isnan(b["tpot_mean_s"])
