"""WarmServe's predictors and accuracy tracker (policies/warmserve/predictor.py): defaults, the bounds
of every argument (with the error each names), histories without days or windows, a one-error
correction, the oracle's window range and the accuracy report's window counts. Written for the
mutants that survived tests/policies/test_warmserve_predictor.py (docs/testing.md)."""

import numpy as np
import pytest

from warmsim.policies.warmserve.predictor import (
    CorrectiveSeasonalPredictor,
    LastWindowPredictor,
    OraclePredictor,
    PredictionAccuracy,
)


def test_defaults_are_the_artifacts():
    csp = CorrectiveSeasonalPredictor()
    assert (csp.window_s, csp.n_correction, csp.decay, csp.baseline_window_s) == (300.0, 10, 0.5, None)
    assert LastWindowPredictor().window_s == 300.0
    o = OraclePredictor({})
    assert (o.window_s, o.truth_from) == (300.0, "self")
    assert PredictionAccuracy().min_denominator == 1.0


@pytest.mark.parametrize("make", [lambda w: CorrectiveSeasonalPredictor(window_s=w),
                                  lambda w: LastWindowPredictor(window_s=w),
                                  lambda w: OraclePredictor({}, window_s=w)])
def test_a_window_must_be_positive_seconds(make):
    with pytest.raises(ValueError, match=r"\.window_s: got 0; allowed: a number in \[0\.1, 604800\]"):
        make(0)
    assert make(0.5).window_s == 0.5


def test_csp_argument_bounds():
    with pytest.raises(ValueError, match=r"n_correction: got -1; allowed: an integer in \[0, 10000\]"):
        CorrectiveSeasonalPredictor(n_correction=-1)
    assert CorrectiveSeasonalPredictor(n_correction=0).n_correction == 0
    for bad in (0, 1.5, -0.5):
        with pytest.raises(ValueError, match=r"decay: got .*; allowed: a number in \(0, 1\]"):
            CorrectiveSeasonalPredictor(decay=bad)
    assert CorrectiveSeasonalPredictor(decay=1).decay == 1.0
    with pytest.raises(ValueError, match=r"baseline_window_s: got 0; allowed: null or a number in \[0\.1, 604800\]"):
        CorrectiveSeasonalPredictor(baseline_window_s=0)
    assert CorrectiveSeasonalPredictor(baseline_window_s=0.5).baseline_window_s == 0.5
    assert CorrectiveSeasonalPredictor(window_s=180, baseline_window_s=300).baseline_window_s == 300.0


def test_bad_shapes_name_the_model():
    with pytest.raises(ValueError, match=r"history\['a'\] must have 3 dimensions with a last axis of 2"):
        CorrectiveSeasonalPredictor(history={"a": np.zeros((2, 3, 3))})
    with pytest.raises(ValueError, match=r"truth\['b'\] must have 2 dimensions .* got shape \(4,\)"):
        OraclePredictor({"b": np.zeros(4)})


def test_histories_without_days_or_windows_count_as_none_and_do_not_hide_the_others():
    # a: no days; b: days without windows; c: one window per day (avg 2 and 4 -> 3, peak 5);
    # d: after them in the mapping, two windows.
    hist = {"a": np.zeros((0, 4, 2)), "b": np.zeros((2, 0, 2)), "c": np.array([[[2.0, 5.0]], [[4.0, 5.0]]]),
            "d": np.array([[1.0, 2.0], [3.0, 4.0]])}
    csp = CorrectiveSeasonalPredictor(history=hist)
    assert csp.baseline("a", 0) == (0.0, 0.0) and csp.baseline("b", 1) == (0.0, 0.0)
    assert csp.baseline("c", 0) == (3.0, 5.0) and csp.baseline("c", 7) == (3.0, 5.0)
    assert csp.baseline("d", 1) == (3.0, 4.0) and csp.predict("d", 2) == (1.0, 2.0)


def test_a_one_error_correction_is_the_last_error():
    csp = CorrectiveSeasonalPredictor(history={"a": np.array([[1.0, 2.0]])}, n_correction=1)
    csp.observe("a", 0, 4.0, 2.0)   # error (3, 0)
    csp.observe("a", 1, 2.0, 5.0)   # error (1, 3): the only one kept
    assert csp.correction("a") == (1.0, 3.0) and csp.predict("a", 2) == (2.0, 5.0)
    none = CorrectiveSeasonalPredictor(n_correction=0)
    none.observe("a", 0, 4.0, 2.0)
    assert none.correction("a") == (0.0, 0.0)


def test_oracle_covers_every_window_of_its_truth():
    truth = {"a": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])}
    o = OraclePredictor(truth, truth_from="static")
    assert o.truth_from == "static"
    assert [o.predict("a", w) for w in range(5)] == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0), (0.0, 0.0)]
    assert o.predict("a", -1) == (0.0, 0.0) and o.predict("b", 0) == (0.0, 0.0)
    with pytest.raises(ValueError, match=r"truth_from: got 'x'; allowed: one of self, static"):
        OraclePredictor(truth, truth_from="x")


def test_accuracy_counts_avg_and_peak_windows_apart():
    # w0: avg 0/0 (skipped), peak 2 vs 1 (error 1); w1: avg 1 vs 2 (error 1/2), peak 0/0 (skipped);
    # w2: avg 2 vs 2, peak 4 vs 4 (errors 0).
    acc = PredictionAccuracy()
    acc.record("a", (0, 2), (0, 1))
    acc.record("a", (1, 0), (2, 0))
    acc.record("a", (2, 4), (2, 4))
    r = acc.report("a")
    assert (r.windows_avg, r.windows_peak) == (2, 2)
    assert (r.accuracy_avg, r.accuracy_peak) == pytest.approx((1 - 0.25, 1 - 0.5))
    acc.record("b", (0, 3), (0, 3))  # b: avg skipped, peak counted
    rb = acc.report("b")
    assert (rb.windows_avg, rb.windows_peak) == (0, 1) and np.isnan(rb.accuracy_avg) and rb.accuracy_peak == 1.0
    empty = PredictionAccuracy().report("x")
    assert (empty.windows_avg, empty.windows_peak) == (0, 0)
    with pytest.raises(ValueError, match=r"min_denominator must be > 0, got 0"):
        PredictionAccuracy(min_denominator=0)
