"""A start that reads a checkpoint from a node's host-memory cache pins it: another load that fills
the cache in between (during the start's process start-up) cannot push it out. Before the pin, a
ServerlessLLM run at 512 GPUs stopped with "not in node 0's host cache" (docs/performance.md)."""

import pytest

from tests.sim.helpers import GIB, cost, model, ondemand, workload
from warmsim.policies.types import Activate
from warmsim.sim.cluster import ClusterSpec
from warmsim.sim.errors import PlanError
from warmsim.sim.simulation import Simulation


def sim(cache_gib=20):
    spec = ClusterSpec(nodes=1, gpus_per_node=2, gpu_hbm_bytes=80 * GIB, memory_fraction=0.9, pcie_pinned_bw=10e9,
                       pcie_pageable_bw=2.5e9, host_mem_bw=100e9, ssd_bw=10e9, nic_bw=10e9, nvlink_bw=300e9,
                       host_cache_bytes=cache_gib * GIB)
    w = workload([100.0], [10], [1], models=("a", "b"))
    s = Simulation(w, {"a": model("a"), "b": model("b")}, spec, cost(process_start=2.0, engine_init=0.0), ondemand())
    return s


def test_a_checkpoint_chosen_for_a_start_stays_cached_until_its_load_ends():
    s = sim()
    cache = s.cluster.nodes[0].host_cache
    cache.touch("a", model("a").weight_bytes)
    inst = s.apply_activate(Activate("a", (0,), source="host_pinned"))
    cache.touch("b", model("b").weight_bytes)  # another load fills the 20 GiB cache meanwhile
    assert "a" in cache  # pinned: b could not push it out (b does not fit beside it)
    s.env.run(until=10.0)
    assert inst.state == "active" and not cache.pins
    cache.touch("b", model("b").weight_bytes)  # unpinned now: the least recently used goes
    assert "a" not in cache and "b" in cache


def test_a_start_from_a_cache_that_does_not_hold_the_checkpoint_is_a_plan_error_at_once():
    s = sim()
    with pytest.raises(PlanError, match="not in node 0's host cache"):
        s.apply_activate(Activate("a", (0,), source="host_pinned"))
