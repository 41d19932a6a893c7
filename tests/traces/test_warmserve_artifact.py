"""The warmserve workload kind against the artifact's trace generator (docs/warmserve.md, "The paper
setup"): burstiness (``trace_generator.py`` ``apply_burstiness`` on the merged hour)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmsim.traces.assemble import REGULAR_CV, apply_burstiness, split_counts
from warmsim.traces.builders import build_workload
from warmsim.traces.kinds.warmserve import _bursty

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
