"""Weights copied from a running instance of the same model (peer sources): paths, exact timings,
the peer's weights held until the copy ends, and the plans the simulator refuses."""

import pytest

from tests.sim.helpers import cluster, cost, model, workload
from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.ondemand import FirstFitActivator
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.types import Activate, Prewarm
from warmsim.sim.cost import Interference
from warmsim.sim.errors import PlanError
from warmsim.sim.memory import WEIGHTS
from warmsim.sim.simulation import Simulation

US = 1e-6
BW = 10e9  # helpers.cluster: PCIe and NIC at BW, NVLink at 30 x BW


def sim(nodes=1, gpus=2):
    b = Bundle("t", LeastLoadedRouter(32), NoAutoscaler(), FirstFitActivator(), profile_run=False)  # a start is its copy
    c = cost(process_start=0.0, engine_init=0.0, bandwidth=BW, slowdown=Interference(compute_slowdown=0.25))
    return Simulation(workload([1000.0], [10], [1]), {"a": model()}, cluster(nodes=nodes, gpus=gpus, bw=BW), c, b)


def test_paths_cross_nvlink_inside_a_node_and_both_nics_across_nodes():
    s = sim(nodes=2, gpus=2)
    links, _ = s.cluster.path("peer_nvlink", 1, peer_gpu=0)
    assert [lk.name for lk in links] == ["g0.nvlink_tx", "g1.nvlink_rx"]
    links, _ = s.cluster.path("peer_rdma", 2, peer_gpu=0)
    assert [lk.name for lk in links] == ["n0.nic_tx", "n1.nic", "g2.pcie"]
    with pytest.raises(KeyError):
        s.cluster.path("peer_nvlink", 2, peer_gpu=0)  # NVLink does not leave the node


def test_nvlink_copy_takes_shard_over_nvlink_and_marks_the_peer_busy_copying():
    s = sim()
    peer = s.apply_activate(Activate("a", (0,)), ready_at_start=True)
    new = s.apply_activate(Activate("a", (1,), source="peer_nvlink", peer=peer.id))
    t = model().shard_bytes / (30 * BW)
    s.env.run(until=t / 2)
    assert new.state == "loading" and s.cluster.gpus[0].background_flows == 1
    assert s.step_slowdown(peer, "decode", 1) == pytest.approx(1.25)  # the copy reads the serving GPU's memory
    s.env.run(until=t + US)
    assert new.state == "active" and s.cluster.gpus[0].background_flows == 0
    assert peer.copies_out == 0 and s.step_slowdown(peer, "decode", 1) == 1.0
    assert s.cluster.gpus[1].mem.bytes_of(WEIGHTS, new.id) == model().shard_bytes


def test_rdma_copies_from_one_node_share_its_outgoing_nic():
    s = sim(nodes=3, gpus=1)
    peer = s.apply_activate(Activate("a", (0,)), ready_at_start=True)
    a = s.apply_activate(Activate("a", (1,), source="peer_rdma", peer=peer.id))
    b = s.apply_activate(Activate("a", (2,), source="peer_rdma", peer=peer.id))
    both = 2 * model().shard_bytes / BW  # n0.nic_tx carries both copies at BW / 2 each
    s.env.run(until=both - 1e-3)
    assert a.state == b.state == "loading"
    s.env.run(until=both + US)
    assert a.state == b.state == "active"


def draining_peer_mid_copy():
    """A running peer on GPU 0 whose weights a new instance on GPU 1 copies over NVLink (``t``
    seconds); a quarter into the copy the idle peer drains (its engine stops at once, the instance
    waits for the copy); returns the run at half the copy."""
    s = sim()
    peer = s.apply_activate(Activate("a", (0,)), ready_at_start=True)
    s.apply_activate(Activate("a", (1,), source="peer_nvlink", peer=peer.id))
    t = model().shard_bytes / (30 * BW)
    s.env.run(until=t / 4)
    peer.drain()
    s.env.run(until=t / 2)
    return s, peer, t


def test_a_peer_that_stops_mid_copy_keeps_its_weights_until_the_copy_ends():
    s, peer, t = draining_peer_mid_copy()
    assert peer.state == "draining" and s.cluster.gpus[0].mem.bytes_of(WEIGHTS, peer.id) == model().shard_bytes
    s.env.run(until=t + US)
    assert peer.state == "stopped" and s.cluster.gpus[0].mem.bytes_of(WEIGHTS, peer.id) == 0


def test_a_peer_lost_while_a_copy_waits_on_it_is_stopped_once():
    # A fault loses the waiting peer (and stops it); when the copy ends, the wait must not stop it
    # a second time.
    from warmsim.sim.faults import Faults
    s, peer, t = draining_peer_mid_copy()
    effect = {"instances": 0, "dropped": 0, "retried": 0}
    Faults(s, ()).lose_instance(peer, effect)
    assert peer.state == "stopped" and peer.id not in s.instances and effect["instances"] == 1
    mine = [e for e in s.recorder.timeline if e[1] == "instance" and e[2] == peer.id]
    s.env.run(until=t + US)  # the copy ends (a second stop would fail: the peer is no longer listed)
    assert [e for e in s.recorder.timeline if e[1] == "instance" and e[2] == peer.id] == mine
    assert [e[5] for e in mine][-2:] == ["failed", "stopped"]


@pytest.mark.parametrize("act,match", [
    (Activate("a", (2,), source="peer_nvlink", peer=1), "another node: use peer_rdma"),
    (Activate("a", (1,), source="peer_rdma", peer=1), "the same node: use peer_nvlink"),
    (Activate("a", (1,), source="peer_nvlink", peer=99), "peer 99 is not a live instance"),
    (Activate("a", (1,), source="peer_nvlink"), "peer None is not a live instance"),
    (Activate("a", (1,), source="host_pinned", peer=1), "a peer instance is given but the source is host_pinned"),
])
def test_impossible_peer_plans_are_refused(act, match):
    s = sim(nodes=2, gpus=2)
    peer = s.apply_activate(Activate("a", (0,)), ready_at_start=True)
    assert peer.id == 1
    with pytest.raises(PlanError, match=match):
        s.apply_activate(act)


def test_a_peer_still_loading_cannot_be_copied_from_and_prewarm_from_a_peer_is_refused():
    s = sim(gpus=3)
    loading = s.apply_activate(Activate("a", (0,)))
    with pytest.raises(PlanError, match="not a running instance"):
        s.apply_activate(Activate("a", (1,), source="peer_nvlink", peer=loading.id))
    with pytest.raises(PlanError, match="not modelled"):
        s.apply_prewarm(Prewarm("a", (2,), source="peer_nvlink"))
