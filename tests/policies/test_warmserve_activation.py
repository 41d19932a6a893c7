"""WarmServe activation (warmserve.md section 4): hit, loading hit, least-overlap miss, evictions."""

from __future__ import annotations

import pytest

from warmsim.policies.ondemand import FirstFitActivator
from warmsim.policies.types import (
    ACTIVE,
    DRAINING,
    STOPPED,
    Activate,
    GPUView,
    InstanceView,
    ModelView,
    ReplicaView,
    Snapshot,
)
from warmsim.policies.warmserve.activation import WarmServeActivator, replicas_evicted_by

GIB = 1 << 30


def snap(*, nodes: int = 1, gpn: int = 4, replicas=(), instances=()) -> Snapshot:
    models = {"a": ModelView("a", GIB, 1, GIB), "b": ModelView("b", 2 * GIB, 2, GIB),
              "c": ModelView("c", 4 * GIB, 4, GIB), "d": ModelView("d", GIB, 1, GIB)}
    reps = tuple(ReplicaView(rid, m, tuple(g), ready, GIB) for rid, m, g, ready in replicas)
    insts = tuple(InstanceView(iid, m, tuple(g), state, 0, 0.0) for iid, m, g, state in instances)
    gpus = tuple(GPUView(g, g // gpn, 80 * GIB, 0) for g in range(nodes * gpn))
    return Snapshot(0.0, gpn, gpus, models, insts, reps)


def test_ready_hit_takes_lowest_id_free_replica():
    s = snap(replicas=[(5, "a", (2,), True), (4, "a", (1,), True), (1, "a", (0,), True)],
             instances=[(9, "b", (0, 3), ACTIVE)])
    act = WarmServeActivator().choose(s, "a")
    assert act == Activate("a", (1,), source="prewarmed", replica=4)  # replica 1 sits on a busy GPU


def test_ready_hit_beats_loading_replica_with_lower_id():
    s = snap(replicas=[(1, "b", (0, 1), False), (2, "b", (2, 3), True)])
    assert WarmServeActivator().choose(s, "b") == Activate("b", (2, 3), source="prewarmed", replica=2)


def test_loading_hit_when_no_ready_replica_is_free():
    s = snap(replicas=[(1, "b", (0, 1), True), (2, "b", (2, 3), False)], instances=[(7, "a", (1,), ACTIVE)])
    assert WarmServeActivator().choose(s, "b") == Activate("b", (2, 3), source="prewarmed", replica=2)


def test_miss_picks_least_overlapped_gpus_and_names_evictions():
    # GPU 0 serves; GPU 1 holds two replicas, GPU 2 one, GPU 3 none.
    reps = [(2, "a", (1,), True), (3, "b", (2, 3), True), (4, "b", (0, 1), True)]
    s = snap(replicas=reps, instances=[(7, "a", (0,), ACTIVE)])
    # per-GPU counts: 1 -> 2 (a, b#4), 2 -> 1 (b#3), 3 -> 1 (b#3)
    act = WarmServeActivator(miss_source="ssd").choose(s, "d")
    assert act == Activate("d", (2,), source="ssd", replica=None)  # count 1, lowest id among 2, 3
    assert replicas_evicted_by(s, act.gpus, act.replica) == [3]
    act_b = WarmServeActivator().choose(snap(replicas=[(2, "a", (1,), True), (3, "a", (0,), True)]), "c")
    assert act_b.gpus == (0, 1, 2, 3) and act_b.replica is None


def test_miss_tp2_least_overlap_ties_by_id():
    s = snap(replicas=[(1, "a", (0,), True), (2, "c", (0, 1, 2, 3), True)])
    # counts: 0 -> 2, 1 -> 1, 2 -> 1, 3 -> 1: choose (1, 2)
    act = WarmServeActivator().choose(s, "b")
    assert act.gpus == (1, 2)
    assert replicas_evicted_by(s, act.gpus, None) == [2]


def test_hit_evicts_every_other_overlapping_replica_but_keeps_its_own():
    s = snap(replicas=[(1, "b", (0, 1), True), (2, "a", (0,), True), (3, "a", (1,), False), (4, "a", (2,), True),
                       (5, "c", (0, 1, 2, 3), False)])
    act = WarmServeActivator().choose(s, "b")
    assert act.replica == 1
    assert replicas_evicted_by(s, act.gpus, act.replica) == [2, 3, 5]


def test_none_without_free_gpus_and_draining_still_occupies():
    s = snap(instances=[(1, "c", (0, 1, 2, 3), DRAINING)])
    assert WarmServeActivator().choose(s, "a") is None
    assert FirstFitActivator().choose(s, "a") is None
    s2 = snap(instances=[(1, "c", (0, 1, 2, 3), STOPPED)])
    assert WarmServeActivator().choose(s2, "a") == Activate("a", (0,), source="host_pinned")


def test_miss_stays_inside_one_node():
    s = snap(nodes=2, gpn=4, instances=[(1, "a", (0,), ACTIVE), (2, "a", (5,), ACTIVE)])
    assert WarmServeActivator().choose(s, "c") is None  # 3 + 3 free, but 4 needed on one node
    assert WarmServeActivator().choose(s, "b").gpus == (1, 2)


def test_miss_node_first_versus_best():
    # node 0 free GPUs all hold replicas; node 1 is clean
    s = snap(nodes=2, gpn=2, replicas=[(1, "a", (0,), True), (2, "a", (1,), True)])
    assert WarmServeActivator().choose(s, "b").gpus == (0, 1)  # artifact: first node with room
    assert WarmServeActivator(miss_node="best").choose(s, "b").gpus == (2, 3)


def test_first_free_ignores_overlap():
    s = snap(replicas=[(1, "c", (0, 1, 2, 3), True), (2, "a", (0,), True)])
    assert WarmServeActivator(miss_gpus="first_free").choose(s, "d") == Activate("d", (0,))
    assert WarmServeActivator().choose(s, "d").gpus == (1,)


def test_first_fit_activator_ignores_replicas():
    s = snap(replicas=[(1, "a", (3,), True)], instances=[(1, "b", (0, 1), ACTIVE)])
    assert FirstFitActivator(source="ssd").choose(s, "a") == Activate("a", (2,), source="ssd")


def test_bad_options_rejected():
    with pytest.raises(ValueError):
        WarmServeActivator(miss_gpus="random")
    with pytest.raises(ValueError):
        WarmServeActivator(miss_node="last")
