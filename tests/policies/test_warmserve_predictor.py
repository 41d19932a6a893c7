"""Corrective Seasonal Predictor, oracle, last-window predictor and accuracy (warmserve.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from warmsim.policies.base import Predictor
from warmsim.policies.warmserve.predictor import (
    CorrectiveSeasonalPredictor,
    LastWindowPredictor,
    OraclePredictor,
    PredictionAccuracy,
)

# Two previous days, four windows, (avg, peak) per window.
DAY0 = [[10, 15], [20, 25], [30, 35], [40, 45]]
DAY1 = [[14, 19], [24, 29], [34, 39], [44, 49]]
HISTORY = {"m": np.array([DAY0, DAY1], dtype=float)}
# Baseline = mean of the days: avg 12, 22, 32, 42; peak 17, 27, 37, 47.


def test_protocol():
    for p in (CorrectiveSeasonalPredictor(300, HISTORY), OraclePredictor({}), LastWindowPredictor()):
        assert isinstance(p.window_s, float)
        assert callable(p.observe) and callable(p.predict)
        _: Predictor = p


def test_csp_hand_computed_correction():
    p = CorrectiveSeasonalPredictor(300, HISTORY)
    assert p.predict("m", 0) == (12.0, 17.0)  # no window closed yet: baseline
    p.observe("m", 0, 16.0, 17.0)  # errors (+4, 0)
    assert p.predict("m", 1) == pytest.approx((22 + 4, 27 + 0))
    p.observe("m", 1, 20.0, 33.0)  # errors (-2, +6)
    # avg: (1*(-2) + 0.5*4) / 1.5 = 0;  peak: (1*6 + 0.5*0) / 1.5 = 4
    assert p.predict("m", 2) == pytest.approx((32.0, 41.0))
    p.observe("m", 2, 35.0, 37.0)  # errors (+3, 0)
    # avg: (1*3 + 0.5*(-2) + 0.25*4) / 1.75 = 3 / 1.75 = 12/7;  peak: (0 + 0.5*6 + 0) / 1.75 = 12/7
    assert p.predict("m", 3) == pytest.approx((42 + 12 / 7, 47 + 12 / 7))


def test_csp_keeps_only_last_n_errors():
    p = CorrectiveSeasonalPredictor(300, HISTORY, n_correction=2)
    for w, (a, pk) in enumerate([(16, 17), (20, 33), (35, 37)]):
        p.observe("m", w, a, pk)
    # last two errors: avg -2 (weight 1/2), +3 (weight 1): (3 - 1) / 1.5 = 4/3; peak (0 + 3) / 1.5 = 2
    assert p.predict("m", 3) == pytest.approx((42 + 4 / 3, 47 + 2))


def test_csp_decay_parameter():
    p = CorrectiveSeasonalPredictor(300, HISTORY, decay=0.25)
    p.observe("m", 0, 16.0, 17.0)  # +4
    p.observe("m", 1, 20.0, 27.0)  # -2
    # (1*(-2) + 0.25*4) / 1.25 = -0.8
    assert p.predict("m", 2)[0] == pytest.approx(32 - 0.8)


def test_csp_clamps_at_zero_and_handles_missing_history_and_wraps():
    p = CorrectiveSeasonalPredictor(300, {"m": np.array([[[10.0, 20.0], [1.0, 30.0]]])})
    p.observe("m", 0, 0.0, 15.0)  # errors (-10, -5)
    assert p.predict("m", 1) == (0.0, 25.0)  # avg 1 - 10 = -9 is clamped to 0; peak 30 - 5
    r = CorrectiveSeasonalPredictor(300, {})
    assert r.predict("x", 7) == (0.0, 0.0)
    r.observe("x", 0, 5.0, 8.0)
    assert r.predict("x", 1) == (5.0, 8.0)
    s = CorrectiveSeasonalPredictor(300, HISTORY)
    assert s.predict("m", 5) == s.predict("m", 1) == (22.0, 27.0)  # wraps around the history


def test_csp_accepts_single_day_and_rejects_bad_shape():
    p = CorrectiveSeasonalPredictor(300, {"m": np.array(DAY0, dtype=float)})
    assert p.predict("m", 2) == (30.0, 35.0)
    with pytest.raises(ValueError):
        CorrectiveSeasonalPredictor(300, {"m": np.zeros((2, 4, 3))})


def test_oracle_and_last_window():
    o = OraclePredictor({"m": np.array([[1.0, 2.0], [3.0, 4.0]])}, window_s=60)
    assert o.predict("m", 1) == (3.0, 4.0) and o.predict("m", 2) == (0.0, 0.0) and o.predict("z", 0) == (0.0, 0.0)
    o.observe("m", 0, 100.0, 100.0)
    assert o.predict("m", 0) == (1.0, 2.0)
    lw = LastWindowPredictor(60)
    assert lw.predict("m", 0) == (0.0, 0.0)
    lw.observe("m", 0, 3.0, 9.0)
    lw.observe("m", 1, 4.0, 5.0)
    assert lw.predict("m", 2) == (4.0, 5.0)


def test_accuracy_by_hand():
    acc = PredictionAccuracy(min_denominator=1.0)
    acc.record("m", (10.0, 20.0), (8.0, 25.0))  # rel: 2/8 = 0.25, 5/25 = 0.2
    acc.record("m", (0.0, 0.0), (0.0, 0.0))  # skipped for both
    acc.record("m", (0.5, 0.0), (0.0, 2.0))  # avg: 0.5 / max(0, 1) = 0.5; peak: 2 / 2 = 1
    r = acc.report("m")
    assert r.accuracy_avg == pytest.approx(1 - (0.25 + 0.5) / 2)
    assert r.accuracy_peak == pytest.approx(1 - (0.2 + 1.0) / 2)
    assert (r.windows_avg, r.windows_peak) == (2, 2)
    acc.record("n", (4.0, 4.0), (4.0, 4.0))
    pooled = acc.report()
    assert pooled.windows_avg == 3 and pooled.accuracy_avg == pytest.approx(1 - 0.75 / 3)
    assert acc.models() == ["m", "n"]
    assert np.isnan(PredictionAccuracy().report("none").accuracy_avg)
