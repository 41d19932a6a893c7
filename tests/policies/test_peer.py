"""PeerActivator on hand-built snapshots: where it starts a scale-up and whom it copies from."""

from tests.policies.snapshots import inst, snap
from warmsim.policies.peer import PeerActivator
from warmsim.policies.types import Activate


def test_no_instance_running_loads_from_the_fallback_source():
    s = snap(n_nodes=2)
    assert PeerActivator(fallback_source="ssd").choose(s, "a") == Activate("a", (0,), source="ssd")


def test_prefers_free_gpus_beside_a_running_instance_over_lower_numbered_ones():
    # node 0 has free GPUs but no instance of a; node 1 runs a on GPU 4
    s = snap(n_nodes=2, instances=[inst(7, "a", [4]), inst(8, "b", [0, 1])])
    act = PeerActivator().choose(s, "a")
    assert act == Activate("a", (5,), source="peer_nvlink", peer=7)


def test_across_nodes_when_the_peer_node_is_full_and_not_when_rdma_is_off():
    full = [inst(7, "a", [4]), inst(9, "b", [5, 6]), inst(10, "a", [7])]
    s = snap(n_nodes=2, instances=full)
    assert PeerActivator().choose(s, "a") == Activate("a", (0,), source="peer_rdma", peer=7)
    assert PeerActivator(rdma=False).choose(s, "a") == Activate("a", (0,), source="host_pinned")


def test_only_active_whole_gpu_instances_are_peers():
    s = snap(n_nodes=1, instances=[inst(3, "a", [0], state="loading"), inst(4, "a", [1], share=0.5),
                                   inst(5, "a", [2], state="draining")])
    assert PeerActivator().choose(s, "a") == Activate("a", (3,), source="host_pinned")


def test_tp_groups_stay_inside_one_node_and_none_when_nothing_fits():
    s = snap(n_nodes=2, instances=[inst(1, "b", [0, 1]), inst(2, "a", [2]), inst(3, "a", [4]), inst(4, "a", [5]),
                                   inst(5, "a", [6])])
    # node 0 has one free GPU (3), node 1 one (7): no room for a TP-2 group of b
    assert PeerActivator().choose(s, "b") is None
    s = snap(n_nodes=2, instances=[inst(1, "b", [0, 1]), inst(2, "a", [4])])
    assert PeerActivator().choose(s, "b") == Activate("b", (2, 3), source="peer_nvlink", peer=1)
