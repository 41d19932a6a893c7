"""Placement of prewarmed replicas (policies/warmserve/placement.py), the cases the placement tests
leave out, by hand: replicas outside one node, the per-GPU shard at other granules, a committed
replica's score seen by later candidates, candidates after a skipped one, the same-model rule through
``plan``, a configured source, and the round-robin ablation's order, exact fits, missing predictions
and burst demand. Written for the mutants that survived tests/policies/test_warmserve_placement.py
(docs/testing.md)."""

from dataclasses import replace

import pytest

from tests.policies.test_warmserve_placement import GIB, model, placed, snap
from warmsim.policies.types import ReplicaView
from warmsim.policies.warmserve.placement import EvictAwarePlacer, RoundRobinPlacer, shard_need


def test_a_replica_outside_one_node_is_an_error_naming_it():
    ms = [model("a", 10 * GIB), model("b", GIB)]
    preds = {"b": (32.0, 32.0)}
    one = snap(ms, nodes=1, gpn=8)
    bad = replace(one, replicas=(ReplicaView(5, "a", (8,), True, 10 * GIB),))  # GPU 8 of 0..7
    with pytest.raises(ValueError, match=r"replica 5 has GPUs \(8,\) that are not inside one node"):
        EvictAwarePlacer().plan(bad, preds)
    two = snap(ms, nodes=2, gpn=8)
    bad = replace(two, replicas=(ReplicaView(6, "a", (7, 8), True, 5 * GIB),))  # across nodes 0 and 1
    with pytest.raises(ValueError, match=r"replica 6 has GPUs \(7, 8\) that are not inside one node"):
        EvictAwarePlacer().plan(bad, preds)


def test_shard_need_is_the_ceiling_share_rounded_to_the_granule():
    assert shard_need(model("x", 5, 2), 1) == 3  # ceil(5 / 2)
    assert shard_need(model("x", 3 * GIB + 1, 1), GIB) == 4 * GIB
    assert shard_need(model("x", 3 * GIB + 1, 1), 2 << 20) == 3 * GIB + (2 << 20)


def test_sources_are_checked_by_name_and_used():
    with pytest.raises(Exception, match=r"^EvictAwarePlacer\.source: unknown weight source 'x'"):
        EvictAwarePlacer(source="x")
    with pytest.raises(Exception, match=r"^RoundRobinPlacer\.source: unknown weight source 'x'"):
        RoundRobinPlacer(source="x")
    with pytest.raises(ValueError, match=r"RoundRobinPlacer.order: got 'x'; allowed: one of config, name"):
        RoundRobinPlacer(order="x")
    s = snap([model("a", GIB)], gpn=2)
    for p in (EvictAwarePlacer(source="ssd"), RoundRobinPlacer(source="ssd")):
        acts = p.plan(s, {"a": (32.0, 32.0)})
        assert [a.source for a in acts] == ["ssd"]


def test_a_burst_for_a_model_idle_on_average_scores_with_zero_avg_as():
    # b: avg 0, peak 64 -> 2 burst replicas, factor 64 / zero_avg_as (2) = 32; cold = 1 GiB / 32 GiB/s.
    s = snap([model("b", GIB)], gpn=2)
    _, todo = EvictAwarePlacer(zero_avg_as=2.0).candidates(s, {"b": (0.0, 64.0)})
    import math
    assert todo == [(pytest.approx(32 / 32), "b"), (pytest.approx(math.exp(-1 / 2) * 32 / 32), "b")]


def test_replicas_of_unlisted_models_score_zero():
    ms = [model("a", GIB)]
    s = snap(ms + [model("z", GIB)], gpn=2, replicas=[(3, "z", (0,))])
    s = replace(s, models={"a": ms[0]})
    scores, _ = EvictAwarePlacer().candidates(s, {"a": (32.0, 32.0)})
    assert scores == {3: 0.0}


def test_later_candidates_see_a_committed_replica_score():
    # One node, 2 GPUs. a (32 GiB, score 1.0) is placed first: GPU 0 (sum 0) beats GPU 1 (c's replica,
    # score 0.5). b (8 GiB, score 0.25) outranks neither a (1.0) nor c (0.5): the smaller sum, GPU 1.
    ms = [model("a", 32 * GIB), model("b", 8 * GIB), model("c", 16 * GIB)]
    s = snap(ms, gpn=2, replicas=[(1, "c", (1,))])
    got = placed(EvictAwarePlacer().plan(s, {m: (32.0, 32.0) for m in "abc"}))
    assert got == [("a", (0,)), ("b", (1,))]


def test_a_model_that_cannot_be_placed_does_not_stop_the_others():
    # gpn 2: a is TP4 (cannot fit a node), big is 90 GiB (no GPU has room); both score higher than b.
    ms = [model("a", 64 * GIB, 4), model("big", 90 * GIB), model("b", GIB)]
    s = snap(ms, gpn=2)
    got = placed(EvictAwarePlacer().plan(s, {m: (32.0, 32.0) for m in ("a", "big", "b")}))
    assert got == [("b", (0,))]


def test_plan_never_puts_two_replicas_of_a_model_on_one_gpu():
    s = snap([model("a", GIB)], gpn=1)
    assert placed(EvictAwarePlacer().plan(s, {"a": (64.0, 64.0)})) == [("a", (0,))]


def test_round_robin_turns_go_in_order_over_three_models():
    ms = [model(m, GIB) for m in "abc"]
    preds = {m: (64.0, 64.0) for m in "abc"}  # 2 each
    s = snap(ms, gpn=4)
    want = [("a", (0,)), ("b", (0,)), ("c", (0,)), ("a", (1,)), ("b", (1,)), ("c", (1,))]
    assert placed(RoundRobinPlacer().plan(s, preds)) == want
    assert placed(RoundRobinPlacer(artifact_loop=False).plan(s, preds)) == want


def test_round_robin_takes_a_gpu_with_exactly_the_shard_free():
    s = snap([model("a", 10 * GIB)], gpn=1, used={0: 70 * GIB})  # 10 GiB free = the shard
    assert placed(RoundRobinPlacer().plan(s, {"a": (32.0, 32.0)})) == [("a", (0,))]


def test_round_robin_a_model_without_prediction_wants_nothing():
    ms = [model("a", GIB), model("b", GIB)]
    s = snap(ms, gpn=2)
    assert placed(RoundRobinPlacer(artifact_loop=False).plan(s, {"b": (32.0, 32.0)})) == [("b", (0,))]
    assert placed(RoundRobinPlacer(order="name").plan(s, {"b": (32.0, 32.0)})) == []  # a first, demand 0


def test_round_robin_demand_counts_burst_replicas():
    # avg 32, peak 96 (per instance 32): 1 foundation + 2 burst = 3 replicas.
    s = snap([model("a", GIB)], gpn=4)
    for loop in (True, False):
        assert placed(RoundRobinPlacer(artifact_loop=loop).plan(s, {"a": (32.0, 96.0)})) == [
            ("a", (0,)), ("a", (1,)), ("a", (2,))]


def test_candidates_with_equal_scores_go_by_model_name():
    # Same size, so the same cold start c. a wants 4 replicas (scores c, c e^-1/4, c e^-1/2, c e^-3/4),
    # b wants 2 (c, c e^-1/2): a's third and b's second score exactly c e^-1/2 (-2/4 == -1/2).
    s = snap([model("a", GIB), model("b", GIB)], gpn=8)
    _, todo = EvictAwarePlacer().candidates(s, {"a": (128.0, 128.0), "b": (64.0, 64.0)})
    assert [m for _, m in todo] == ["a", "b", "a", "a", "b", "a"]


def test_round_robin_variant_keeps_turning_after_a_model_is_served():
    # Our variant: a wants 1, b wants 2: a, b, then a is done and b takes the next turn.
    s = snap([model("a", GIB), model("b", GIB)], gpn=4)
    assert placed(RoundRobinPlacer(artifact_loop=False).plan(s, {"a": (32.0, 32.0), "b": (64.0, 64.0)})) == [
        ("a", (0,)), ("b", (0,)), ("b", (1,))]


def test_round_robin_commits_use_up_memory():
    # One 80 GiB GPU, three 30 GiB models: a and b fit (60 GiB), c does not (90 > 80).
    s = snap([model(m, 30 * GIB) for m in "abc"], gpn=1)
    preds = {m: (32.0, 32.0) for m in "abc"}
    assert placed(RoundRobinPlacer(artifact_loop=False).plan(s, preds)) == [("a", (0,)), ("b", (0,))]


# ---- the shortcut when no model wants another replica ----------------------------------------------

@pytest.mark.parametrize("replicas,instances,wanted", [
    ((), (), True),                                    # b wants ceil(33/32) = 2 foundation replicas, has 0
    (((1, "b", (0,)),), (), True),                     # has 1 of 2
    (((1, "b", (0,)), (2, "b", (1,))), (), False),     # has both
    (((1, "b", (0,)),), ((9, "b", (2,)),), False),     # a running instance covers one: wants 1, has 1
    (((1, "a", (0,)), (2, "a", (1,))), (), True),      # replicas of another model do not count for b
])
def test_wants_more_is_whether_some_model_wants_more_replicas_than_it_has(replicas, instances, wanted):
    ms = [model("a", GIB), model("b", GIB)]
    s = snap(ms, replicas=replicas, instances=instances)
    preds = {"b": (33.0, 33.0)}  # a: no prediction, wants nothing
    p = EvictAwarePlacer()
    assert p.wants_more(s, preds) is wanted
    assert bool(p.candidates(s, preds)[1]) is wanted  # the same question, answered by the scoring
    assert bool(p.plan(s, preds)) is wanted  # room on the GPUs: what is wanted is placed


def test_wants_more_counts_burst_replicas():
    # avg 10, peak 70, nothing running: n_found 1, n_burst ceil(70/32) - 1 = 2; 3 replicas are enough.
    ms = [model("a", GIB)]
    three = snap(ms, replicas=[(i, "a", (i,)) for i in range(3)])
    two = snap(ms, replicas=[(i, "a", (i,)) for i in range(2)])
    assert not EvictAwarePlacer().wants_more(three, {"a": (10.0, 70.0)})
    assert EvictAwarePlacer().wants_more(two, {"a": (10.0, 70.0)})


def test_wants_more_counts_a_model_without_replicas_as_having_none():
    # avg = peak = 32, nothing running: one foundation replica wanted, none there.
    s = snap([model("a", GIB)])
    assert EvictAwarePlacer().wants_more(s, {"a": (32.0, 32.0)})
    assert not EvictAwarePlacer().wants_more(s, {"a": (0.0, 0.0)})
