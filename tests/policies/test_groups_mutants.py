"""Candidate groups (policies/warmserve/groups.py), the edges the placement tests leave out: subset
masks of impossible sizes, the 62-GPU bound of a node mask, nodes with too few eligible GPUs, and the
strict "outranks" of the two-stage choice. Written for the mutants that survived
tests/policies/test_warmserve_placement.py (docs/testing.md)."""

import numpy as np
import pytest

from warmsim.policies.warmserve.groups import GroupScan, ReplicaTable, choose_group, scan_groups, subset_masks


@pytest.mark.parametrize("n,size", [(4, 0), (2, 3), (0, 1)])
def test_no_subsets_of_size_zero_or_larger_than_the_node(n, size):
    m = subset_masks(n, size)
    assert m.shape == (0,) and m.dtype == np.int64


def test_subsets_are_int64_masks_in_lexicographic_order():
    m = subset_masks(3, 2)
    assert m.tolist() == [0b011, 0b101, 0b110] and m.dtype == np.int64


def test_a_node_mask_holds_at_most_62_gpus():
    assert ReplicaTable(1, 62).gpus_per_node == 62
    with pytest.raises(ValueError, match="at most 62 GPUs per node are supported, got 63"):
        ReplicaTable(1, 63)


def test_nodes_with_fewer_than_tp_eligible_gpus_are_left_out_of_the_scan():
    # 3 nodes x 2 GPUs; node 0 has one GPU with room, node 1 two, node 2 none; TP2 needs 10 bytes.
    t = ReplicaTable(3, 2)
    free = np.array([[10, 5], [10, 10], [0, 0]])
    scan = scan_groups(t, free, 10, 2, 0, subset_masks(2, 2))
    assert scan.nodes.tolist() == [1] and scan.ok.tolist() == [[True]]
    assert choose_group(scan, 1.0) == (1, 0)
    none = scan_groups(t, np.zeros((3, 2), dtype=np.int64), 10, 2, 0, subset_masks(2, 2))
    assert none.nodes.tolist() == [] and choose_group(none, 1.0) is None


def test_a_replica_with_the_same_score_is_not_outranked():
    # Group 0 overlaps replicas with max score 5 (sum 9), group 1 one with score 6 (sum 6). A new
    # replica of score 5 outranks neither, so the smaller sum wins: group 1. With score 5.5 it
    # outranks group 0's replicas only: group 0.
    scan = GroupScan(np.array([1, 2]), np.array([0]), np.array([[True, True]]), np.array([[5.0, 6.0]]),
                     np.array([[9.0, 6.0]]))
    assert choose_group(scan, 5.0) == (0, 1)
    assert choose_group(scan, 5.5) == (0, 0)


def test_a_grown_table_keeps_each_replica_on_its_node_with_its_score():
    # One slot per node to start with: the second replica on node 1 grows the table.
    t = ReplicaTable(2, 2, slots=1)
    t.add(1, 0b01, 1, 0, 5.0)
    t.add(1, 0b10, 1, 1, 7.0)
    t.add(0, 0b01, 1, 1, 2.0)
    scan = scan_groups(t, np.full((2, 2), 100), 10, 1, 2, subset_masks(2, 1))
    assert scan.nodes.tolist() == [0, 1]
    assert scan.max_score.tolist() == [[2.0, 0.0], [5.0, 7.0]]
    assert scan.sum_score.tolist() == [[2.0, 0.0], [5.0, 7.0]]
    # A replica of model 1 sits on node 0's GPU 0 and node 1's GPU 1: model 1 may not go there.
    same = scan_groups(t, np.full((2, 2), 100), 10, 1, 1, subset_masks(2, 1))
    assert same.ok.tolist() == [[False, True], [True, False]]
