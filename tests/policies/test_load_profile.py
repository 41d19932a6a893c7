"""inflight_windows: exact per-window average and peak concurrency."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmsim.policies.load_profile import inflight_windows


def test_hand_case():
    # r0 on [0, 2), r1 on [1, 3), r2 zero-length at 2, r3 on [2.5, 7) crossing into the third window
    avg, peak = inflight_windows([0, 1, 2, 2.5], [2, 2, 0, 4.5], window_s=2.0, n_windows=4)
    # window 0 [0,2): 1 on [0,1), 2 on [1,2)           -> avg 1.5, peak 2
    # window 1 [2,4): 1 on [2,2.5), 2 on [2.5,3), 1 on [3,4) -> (0.5 + 1 + 1) / 2 = 1.25, peak 2
    # window 2 [4,6): 1 throughout                      -> 1, 1
    # window 3 [6,8): 1 on [6,7)                        -> 0.5, 1
    assert avg == pytest.approx([1.5, 1.25, 1.0, 0.5])
    assert peak.tolist() == [2, 2, 1, 1]


def test_half_open_intervals_do_not_overlap_at_the_boundary():
    avg, peak = inflight_windows([0, 1, 1], [1, 1, 0], window_s=2.0, n_windows=1)
    assert peak.tolist() == [1] and avg == pytest.approx([1.0])


def test_request_started_before_zero_and_empty_input():
    avg, peak = inflight_windows([-5], [6], window_s=1.0, n_windows=3)
    assert avg == pytest.approx([1, 0, 0]) and peak.tolist() == [1, 0, 0]
    avg, peak = inflight_windows([], [], window_s=1.0, n_windows=2)
    assert avg.tolist() == [0, 0] and peak.tolist() == [0, 0]
    assert inflight_windows([1], [1], 1.0, 0)[0].size == 0


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        inflight_windows([0], [-1], 1.0, 1)
    with pytest.raises(ValueError):
        inflight_windows([0, 1], [1], 1.0, 1)
    with pytest.raises(ValueError):
        inflight_windows([0], [1], 0.0, 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 30), st.integers(0, 12)), max_size=40), st.integers(1, 5))
def test_matches_unit_grid_brute_force(reqs, w):
    # integer times: the count is constant on each [t, t+1), so a unit grid is exact
    n = 6
    arr = np.array([a for a, _ in reqs], dtype=float)
    svc = np.array([s for _, s in reqs], dtype=float)
    cells = np.zeros(n * w)
    for a, s in reqs:
        for t in range(max(a, 0), min(a + s, n * w)):
            cells[t] += 1
    avg, peak = inflight_windows(arr, svc, float(w), n)
    assert avg == pytest.approx(cells.reshape(n, w).mean(axis=1))
    assert peak.tolist() == cells.reshape(n, w).max(axis=1).tolist()
