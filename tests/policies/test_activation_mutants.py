"""WarmServe's activator (policies/warmserve/activation.py), the cases the activation tests leave out:
a miss when the first node has no room, ties between nodes under ``miss_node="best"``, and the errors
of bad settings. Written for the mutants that survived tests/policies/test_warmserve_activation.py
(docs/testing.md)."""

import pytest

from tests.policies.test_warmserve_activation import snap
from warmsim.policies.types import ACTIVE, Activate
from warmsim.policies.warmserve.activation import WarmServeActivator


@pytest.mark.parametrize("miss_gpus", ["least_overlap", "first_free"])
def test_a_miss_looks_past_a_full_first_node(miss_gpus):
    # Node 0 (GPUs 0-3) is busy; node 1 (GPUs 4-7) is free.
    s = snap(nodes=2, instances=[(1, "c", (0, 1, 2, 3), ACTIVE)])
    for node in ("first", "best"):
        act = WarmServeActivator(miss_gpus=miss_gpus, miss_node=node).choose(s, "b")
        assert act == Activate("b", (4, 5), source="host_pinned", replica=None)


def test_best_node_ties_go_to_the_lowest_node():
    # One replica on each node, each on the GPUs a TP4 start would take: 1 eviction either way.
    s = snap(nodes=2, replicas=[(1, "a", (1,), True), (2, "a", (5,), True)])
    assert WarmServeActivator(miss_node="best").choose(s, "c").gpus == (0, 1, 2, 3)
    # Node 0 costs 2 evictions, node 1 costs 1: node 1.
    s = snap(nodes=2, replicas=[(1, "a", (1,), True), (3, "d", (2,), True), (2, "a", (5,), True)])
    assert WarmServeActivator(miss_node="best").choose(s, "c").gpus == (4, 5, 6, 7)


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match=r"WarmServeActivator.miss_gpus: got 'x'; allowed: one of least_overlap, first_free"):
        WarmServeActivator(miss_gpus="x")
    with pytest.raises(ValueError, match=r"WarmServeActivator.miss_node: got 'x'; allowed: one of first, best"):
        WarmServeActivator(miss_node="x")
    with pytest.raises(Exception, match=r"^WarmServeActivator\.miss_source: unknown weight source 'x'"):
        WarmServeActivator(miss_source="x")
