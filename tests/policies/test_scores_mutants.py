"""Replica demand and scores (policies/warmserve/scores.py), by hand: the burst factor for an
average load between 0 and 1, the smallest valid ``per_instance``, and a burst replica's score with a
cold start other than 1 s. Written for the mutants that survived tests/policies/test_warmserve_placement.py
(docs/testing.md)."""

import math

import pytest

from warmsim.policies.warmserve.scores import GIB, burst_factor, replica_demand, replica_scores


def test_burst_factor_divides_by_any_positive_average():
    assert burst_factor(0.5, 2.0, zero_avg_as=1.0) == 4.0   # peak / avg, even with avg < 1
    assert burst_factor(0.0, 2.0, zero_avg_as=0.25) == 8.0  # peak / zero_avg_as


def test_per_instance_must_be_at_least_one():
    assert replica_demand(3.0, 5.0, 1, 1) == (2, 2)  # ceil(3) - 1; ceil(5) - 1 - 2
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"per_instance must be > 0, got {bad}"):
            replica_demand(1.0, 1.0, 0, bad)


def test_burst_scores_multiply_the_cold_start_by_the_burst_factor():
    # 2 GiB over 1 GiB/s: cold = 2 s. avg 1, peak 3, 1 per instance, none running: 1 foundation and
    # 2 burst replicas, n = 3, factor 3: scores 2, exp(-1/3) x 2 x 3, exp(-2/3) x 2 x 3.
    got = replica_scores(1.0, 3.0, 0, weight_bytes=2 * GIB, tp=1, per_instance=1, bandwidth_gib_s=1.0,
                         zero_avg_as=1.0)
    assert got == pytest.approx([2.0, math.exp(-1 / 3) * 6, math.exp(-2 / 3) * 6])
