"""summary.csv's start-affected columns computed by hand (start_hit_ratio, start_requests,
start_ttft_p99_s, start_ttft_fast), and checked against the timeline of a real run.

Six requests; "start kind" is how the instance that served the request had started, as the request
saw it (``warm``: it was already active when the request was routed to it):

    request  model  arrival  first token  finish  status     start kind  TTFT
    0        a      0.0      0.05         1.05    completed  cold        0.05
    1        a      1.0      1.5          4.5     completed  prewarmed   0.5
    2        a      2.0      2.08         5.0     completed  warm        0.08
    3        a      3.0      -            3.0     dropped    prewarmed   999 (unfinished)
    4        b      4.0      4.02         5.0     completed  warm        0.02
    5        b      5.0      5.09         6.0     completed  cold        0.09

Activations (event counters, whole run): a: 4 instance starts, 2 on a ready prewarmed replica, 1 on
one still loading, 1 cold (hit ratio 3/4); b: none by default.
"""

import numpy as np
import pandas as pd
import pytest

from warmsim.experiments.summary import summarize
from warmsim.sim.recorder import START_NAMES, STATUS_NAMES

KINDS = {name: code for code, name in START_NAMES.items()}
ZERO = {"cold_starts": 0, "prewarm_hits": 0, "prewarm_hits_loading": 0, "evictions": 0, "prewarms": 0,
        "instance_starts": 0}
A = {**ZERO, "cold_starts": 1, "prewarm_hits": 2, "prewarm_hits_loading": 1, "instance_starts": 4}


def table() -> pd.DataFrame:
    kinds = ["cold", "prewarmed", "warm", "prewarmed", "warm", "cold"]
    return pd.DataFrame({
        "request": np.arange(6),
        "model": ["a", "a", "a", "a", "b", "b"],
        "arrival_s": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        "prompt_tokens": [10] * 6,
        "output_tokens": [11] * 6,
        "first_token_s": [0.05, 1.5, 2.08, np.nan, 4.02, 5.09],
        "finish_s": [1.05, 4.5, 5.0, 3.0, 5.0, 6.0],
        "ttft_s": [0.05, 0.5, 0.08, np.nan, 0.02, 0.09],
        "status": pd.Categorical.from_codes([1, 1, 1, 2, 1, 1], list(STATUS_NAMES.values())),
        "drop_reason": ["", "", "", "timeout_waiting_for_instance", "", ""],
        "start_kind": pd.Categorical.from_codes([KINDS[k] for k in kinds], list(START_NAMES.values())),
        "instance": [1, 2, 2, 3, 4, 5],
        "gpus": ["0"] * 6,
        "preemptions": np.zeros(6, dtype=np.int32),
    })


def rows(b=None, **kw) -> dict[str, dict]:
    args = dict(duration_s=10.0, end_s=10.0, gpu_seconds=20.0, prediction_log=[], slo_ttft_s=1.0, slo_tpot_s=0.2,
                unfinished_ttft_s=999.0, fast_ttft_s=0.1, profile="constant", measured=False, models=["a", "b"])
    args.update(kw)
    df = summarize("sys", table(), {"a": dict(A), "b": dict(b or ZERO)}, **args)
    return {r["model"]: r for r in df.to_dict("records")}


def test_start_requests_are_those_whose_start_kind_is_not_warm():
    r = rows()
    assert (r["a"]["start_requests"], r["b"]["start_requests"], r["ALL"]["start_requests"]) == (3, 1, 4)


def test_start_ttft_p99_counts_a_dropped_request_as_unfinished_ttft():
    r = rows()
    # ALL: 0.05, 0.09, 0.5, 999; position 0.99 x 3 = 2.97 -> 0.5 + 0.97 x 998.5 = 969.045
    assert r["ALL"]["start_ttft_p99_s"] == pytest.approx(969.045, abs=1e-9)
    # a: 0.05, 0.5, 999; position 1.98 -> 0.5 + 0.98 x 998.5 = 979.03
    assert r["a"]["start_ttft_p99_s"] == pytest.approx(979.03, abs=1e-9)
    assert r["b"]["start_ttft_p99_s"] == pytest.approx(0.09)  # one request
    # the warm requests (0.08, 0.02) are left out: with them ALL's P99 would differ
    assert rows(unfinished_ttft_s=600.0)["a"]["start_ttft_p99_s"] == pytest.approx(0.5 + 0.98 * 599.5)


def test_start_ttft_fast_is_the_share_of_start_requests_completed_under_fast_ttft():
    r = rows()
    assert r["ALL"]["start_ttft_fast"] == pytest.approx(2 / 4)  # requests 0 (0.05) and 5 (0.09)
    assert r["a"]["start_ttft_fast"] == pytest.approx(1 / 3)
    assert r["b"]["start_ttft_fast"] == 1.0
    assert rows(fast_ttft_s=0.06)["ALL"]["start_ttft_fast"] == pytest.approx(1 / 4)  # strict: 0.09 is not < 0.06
    # a dropped request is never fast, even under a silly unfinished TTFT below the threshold
    assert rows(unfinished_ttft_s=0.0)["a"]["start_ttft_fast"] == pytest.approx(1 / 3)


def test_start_request_statistics_honour_the_warmup():
    r = rows(warmup_s=2.5)  # requests 3, 4, 5 remain; start requests 3 (999) and 5 (0.09)
    assert r["ALL"]["start_requests"] == 2
    assert r["ALL"]["start_ttft_p99_s"] == pytest.approx(0.09 + 0.99 * 998.91, abs=1e-9)
    assert r["ALL"]["start_ttft_fast"] == pytest.approx(0.5)
    assert r["a"]["start_ttft_p99_s"] == 999.0 and r["a"]["start_ttft_fast"] == 0.0  # a real 0, not empty
    assert r["a"]["start_hit_ratio"] == pytest.approx(0.75)  # event counters cover the whole run


def test_no_start_request_leaves_the_request_columns_empty():
    req = table()
    req.loc[5, "start_kind"] = "warm"  # b's two requests both met an active instance
    df = summarize("sys", req, {"a": dict(A), "b": dict(ZERO)}, duration_s=10.0, end_s=10.0, gpu_seconds=1.0,
                   prediction_log=[], slo_ttft_s=1.0, slo_tpot_s=0.2, unfinished_ttft_s=999.0, fast_ttft_s=0.1,
                   profile="constant", measured=False, models=["a", "b"])
    b = df.set_index("model").loc["b"]
    assert b["requests"] == 2 and b["start_requests"] == 0
    assert np.isnan(b["start_ttft_p99_s"]) and np.isnan(b["start_ttft_fast"])  # empty, not 0 or 1
    assert df.set_index("model").loc["ALL", "start_requests"] == 3


def test_start_hit_ratio_is_prewarmed_activations_over_all_activations():
    r = rows()
    assert r["a"]["start_hit_ratio"] == pytest.approx(3 / 4)  # ready and still-loading replicas both count
    assert np.isnan(r["b"]["start_hit_ratio"])  # no activation: empty, not 0 or 1
    assert r["ALL"]["start_hit_ratio"] == pytest.approx(3 / 4)
    r = rows(b={**ZERO, "cold_starts": 2, "instance_starts": 2})
    assert r["b"]["start_hit_ratio"] == 0.0  # activations, none prewarmed: a real 0
    assert r["ALL"]["start_hit_ratio"] == pytest.approx(3 / 6)


@pytest.mark.parametrize("system", ["warmserve", "warmserve_default_mode", "sllm"])
def test_the_columns_agree_with_the_timeline_and_requests_of_a_real_run(system):
    """An activation is an instance whose first timeline row is ``starting`` (instances placed at t = 0
    appear directly as ``active``); a hit is one whose weight source (``detail``) is ``prewarmed``."""
    import warnings

    from tests.small_setup import SMALL
    from warmsim.experiments.api import config
    from warmsim.experiments.builder import build_setup, system_config
    from warmsim.experiments.runner import run_system
    cfg = config(*SMALL, "workload.rps=6", "workload.duration_s=300")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_system(build_setup(cfg), system_config(system), cfg)
    inst = res.timeline[res.timeline["kind"] == "instance"]
    first = inst.sort_values("time_s", kind="stable").groupby("id").first()
    started = first[first["state"] == "starting"]
    row = res.summary.set_index("model").loc["ALL"]
    assert len(started) > 0
    assert row["start_hit_ratio"] == pytest.approx((started["detail"] == "prewarmed").mean())
    req = res.requests
    assert row["start_requests"] == int((req["start_kind"] != "warm").sum()) > 0
    late = req[req["start_kind"] != "warm"]
    ttft = np.where(late["status"] == "completed", late["ttft_s"], 999.0)
    assert row["start_ttft_p99_s"] == pytest.approx(np.percentile(ttft, 99))


@pytest.mark.slow
def test_the_artifacts_default_mode_hits_less_and_waits_longer_at_a_start_than_warmserve():
    """Issue 19's check on the default workload (10 minutes): without prewarmed weights no activation
    hits, and the requests that meet a start wait for a load from the page cache and vLLM's profiling
    forward instead of a prewarmed engine's remaining start."""
    from warmsim.experiments.api import compare, config
    res = compare(config("systems=[warmserve,warmserve_default_mode]", "workload.duration_s=600",
                         "output.requests=false", "output.timeline=false"), out=None)
    a = res.overall
    assert a.loc["warmserve_default_mode", "start_hit_ratio"] == 0 < a.loc["warmserve", "start_hit_ratio"]
    assert a.loc["warmserve_default_mode", "start_ttft_p99_s"] > a.loc["warmserve", "start_ttft_p99_s"]
