"""The warmserve workload kind against the artifact's trace generator (docs/warmserve.md, "The paper
setup"): burstiness (``trace_generator.py`` ``apply_burstiness`` on the merged hour), the predictor's
history days (``get_prewarm_placement``), the client's prompt (``request_generator.py`` ``run_requests``)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmsim.sim.errors import UserError
from warmsim.traces.assemble import REGULAR_CV, apply_burstiness, split_counts
from warmsim.traces.builders import build_workload
from warmsim.traces.kinds.warmserve import _bursty, history_days

MODELS4 = ["m0", "m1", "m2", "m3"]


# ---- apply_burstiness ---------------------------------------------------------------------------------

def test_cv_zero_gives_equal_gaps_between_the_first_and_last_arrival():
    t = np.array([2.0, 2.5, 7.0, 11.0, 12.0])
    assert apply_burstiness(t, 0.0, np.random.default_rng(0)) == pytest.approx([2.0, 4.5, 7.0, 9.5, 12.0])
    assert apply_burstiness(t, REGULAR_CV / 2, np.random.default_rng(0)) == pytest.approx([2.0, 4.5, 7.0, 9.5, 12.0])


def test_fewer_than_two_arrivals_or_no_span_are_left_alone():
    rng = np.random.default_rng(0)
    assert apply_burstiness(np.array([]), 4.0, rng).shape == (0,)
    assert list(apply_burstiness(np.array([3.0]), 4.0, rng)) == [3.0]
    assert list(apply_burstiness(np.array([3.0, 3.0, 3.0]), 4.0, rng)) == [3.0, 3.0, 3.0]


def test_gaps_are_the_gamma_draws_rescaled_to_the_span():
    """Gamma(shape 1/cv^2, scale mean_gap cv^2): with cv = 2 and 4 gaps over a span of 8, shape 1/4 and
    scale 2 x 4 = 8; the draws are then scaled to add up to 8 and the first arrival is kept."""
    t = np.array([1.0, 2.0, 3.0, 4.0, 9.0])
    draws = np.random.default_rng(5).gamma(0.25, 8.0, size=4)
    want = 1.0 + np.concatenate([[0.0], np.cumsum(draws * 8.0 / draws.sum())])
    assert apply_burstiness(t, 2.0, np.random.default_rng(5)) == pytest.approx(want)


def test_the_gap_cv_is_the_one_asked_for_over_many_arrivals():
    t = np.sort(np.random.default_rng(1).uniform(0, 3600, 200_000))
    for cv in (0.5, 1.0, 4.0):
        gaps = np.diff(apply_burstiness(t, cv, np.random.default_rng(2)))
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=0, max_size=50), st.floats(0, 10))
def test_order_count_and_span_are_kept(raw, cv):
    t = np.sort(np.array(raw, dtype=np.float64))
    out = apply_burstiness(t, cv, np.random.default_rng(3))
    assert out.shape == t.shape
    assert np.all(np.diff(out) >= 0)
    if len(t):
        assert out[0] == t[0] and out[-1] == pytest.approx(t[-1], rel=1e-9, abs=1e-9)


# ---- the merged hour -----------------------------------------------------------------------------------

def test_the_merged_hour_is_retimed_in_its_time_order_then_cut():
    # model 0 sampled [0, 1, 5], model 1 [2, 3]: merged by time 0(m0) 1(m0) 2(m1) 3(m1) 5(m0);
    # cv 0 -> 0, 1.25, 2.5, 3.75, 5; cut at 4 s -> models 0, 0, 1, 1
    t = np.array([0.0, 1.0, 5.0, 2.0, 3.0])
    model = np.array([0, 0, 0, 1, 1], dtype=np.int32)
    (arr,), (mod,) = _bursty(t, model, 0.0, 4.0, np.random.default_rng(0))
    assert arr == pytest.approx([0.0, 1.25, 2.5, 3.75])
    assert list(mod) == [0, 0, 1, 1]


def test_ties_keep_the_model_order_as_the_artifacts_stable_sort():
    t = np.array([1.0, 2.0, 1.0, 3.0])
    model = np.array([0, 0, 1, 1], dtype=np.int32)
    (_,), (mod,) = _bursty(t, model, 0.0, 10.0, np.random.default_rng(0))
    assert list(mod) == [0, 1, 0, 1]


def test_bursty_workload_keeps_each_models_hour_sample_when_the_whole_hour_is_sent():
    cfg = {"kind": "warmserve", "trace": "conv", "rps": 2, "alpha": 0.5, "duration_s": 3600, "burstiness_cv": 4.0}
    wl = build_workload(cfg, MODELS4, seed=0)
    want = split_counts(3600 * 2, np.arange(1, 5) ** -0.5 / (np.arange(1, 5) ** -0.5).sum())
    assert list(np.bincount(wl.model, minlength=4)) == list(want)
    gaps = np.diff(wl.arrival_s)
    assert gaps.std() / gaps.mean() > 2.5  # merged gaps: CV 4 asked, a heavy-tailed sample


def test_cv_zero_spreads_the_merged_requests_evenly():
    cfg = {"kind": "warmserve", "trace": "conv", "rps": 2, "alpha": 0.5, "burstiness_cv": 0.0}
    wl = build_workload(cfg, MODELS4, seed=0)
    gaps = np.diff(wl.arrival_s)
    assert gaps == pytest.approx(np.full(len(gaps), gaps[0]))
    assert wl.meta["not_sent_after_duration"] == 3600 * 2 - len(wl)


# ---- history days ------------------------------------------------------------------------------------

def test_the_artifacts_history_is_every_day_from_monday_to_the_day_before():
    assert history_days(3, None) == [0, 1, 2]  # Thursday: Mon, Tue, Wed
    assert history_days(6, None) == [0, 1, 2, 3, 4, 5]
    assert history_days(0, None) == []
    # the old choice: k previous days, wrapping round the week (before Monday comes Sunday)
    assert history_days(3, 3) == [0, 1, 2]
    assert history_days(1, 3) == [5, 6, 0]
    assert history_days(6, 9) == [0, 1, 2, 3, 4, 5]  # at most 6


def test_four_models_get_3_4_5_6_history_days_on_the_weeks_dates():
    wl = build_workload({"kind": "warmserve", "trace": "conv", "rps": 2}, MODELS4, seed=0)
    # conversation file: Mon..Sat = 2024-05-13..18, Sun = 05-12; models replay Thu, Fri, Sat, Sun
    mondays_on = [f"2024-05-{d}" for d in range(13, 19)]
    for j, m in enumerate(wl.meta["per_model"]):
        assert m["history_dates"] == mondays_on[:3 + j]
        assert len(wl.history[MODELS4[j]]) == 3 + j
    assert wl.meta["history_days_used"] == [3, 4, 5, 6]
    old = build_workload({"kind": "warmserve", "trace": "conv", "rps": 2, "history_days": 3}, MODELS4, seed=0)
    assert old.meta["per_model"][3]["history_dates"] == ["2024-05-16", "2024-05-17", "2024-05-18"]  # Thu, Fri, Sat


def test_seven_models_have_no_monday_history_as_in_the_artifact():
    models = [f"m{j}" for j in range(7)]
    with pytest.raises(UserError, match=r"workload.history_days: null .* needs at most 6 models"):
        build_workload({"kind": "warmserve", "trace": "conv", "rps": 1}, models, seed=0)
    assert len(build_workload({"kind": "warmserve", "trace": "conv", "rps": 1, "history_days": 2}, models, seed=0)
               .history["m0"]) == 2


def test_history_and_burstiness_knobs_leave_the_other_draws_alone():
    base = {"kind": "warmserve", "trace": "conv", "rps": 2}
    a = build_workload(base, MODELS4, seed=4)
    b = build_workload({**base, "history_days": 2}, MODELS4, seed=4)
    for col in ("arrival_s", "model", "prompt_tokens", "output_tokens"):  # the requests do not move
        assert np.array_equal(getattr(a, col), getattr(b, col))
    c = build_workload({**base, "burstiness_cv": 4.0}, MODELS4, seed=4)
    for name in MODELS4:  # the history is not touched by burstiness
        assert all(np.array_equal(x, y) for x, y in zip(a.history[name], c.history[name]))


# ---- the client's prompt -----------------------------------------------------------------------------

def test_prompts_are_sent_8_tokens_shorter_and_at_least_1():
    base = {"kind": "warmserve", "trace": "conv", "rps": 2}
    raw = build_workload({**base, "prompt_offset_tokens": 0}, MODELS4, seed=2)
    sent = build_workload(base, MODELS4, seed=2)
    assert np.array_equal(sent.prompt_tokens, np.maximum(raw.prompt_tokens - 8, 1))
    assert np.array_equal(sent.output_tokens, raw.output_tokens)
    assert sent.meta["token_caps"]["prompt_offset_to_1"] == int((raw.prompt_tokens <= 8).sum()) > 0
    assert raw.prompt_tokens.max() == 1024 and sent.prompt_tokens.max() == 1016
    assert sent.meta["knobs"]["prompt_offset_tokens"] == 8
