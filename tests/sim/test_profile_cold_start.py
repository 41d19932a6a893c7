"""On the shipped analytic profile, a lone cold start's TTFT is exactly what ``warmsim estimate``
predicts: the simulator and the estimate answer from the same cost model and formulas."""

import warnings

import pytest

from tests.sim.helpers import cluster, model, ondemand, workload
from warmsim.sim.costmodel import ProfileCostModel
from warmsim.sim.simulation import Simulation
from warmsim.sim.startup import startup_breakdown


@pytest.mark.parametrize("source", ["host_pinned", "ssd"])
def test_ondemand_cold_start_ttft_equals_the_estimate(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = ProfileCostModel.load("h100_analytic")
        m = model()
        spec = cluster(bw=1e12)  # overridden below by the profile's own link capacities
        bw = cost.link_bandwidth
        from warmsim.sim.cluster import ClusterSpec
        spec = ClusterSpec(1, 1, 80 * 2**30, 0.9, bw("pcie_h2d_pinned"), bw("pcie_h2d_pageable"), bw("host_mem"),
                           bw("ssd_read"), bw("nic"), bw("nvlink"), None)
        b = ondemand(source=source)
        s = Simulation(workload([5.0], [1024], [2]), {"a": m}, spec, cost, b)
        req = s.run().requests_table()
        engine = s.engine_spec
        block = engine.block_size * m.kv_bytes_per_token_per_gpu
        kv = (spec.gpu_pool_bytes - m.shard_bytes) // block * block
        bd = startup_breakdown(cost, m, source, b.start_path, engine, bandwidth=spec.link_bandwidth(), kv_bytes=kv)
        expected = bd.total_s + cost.prefill_s(m, 1024, 1)
    assert req.ttft_s[0] == pytest.approx(expected, rel=1e-9)
    assert req.start_kind[0] == "cold"
    # and the load term is the profile's bandwidth, not a hidden constant
    assert bd.transfer_s == pytest.approx(
        m.shard_bytes / min(bw("pcie_h2d_pinned"), bw("host_mem" if source == "host_pinned" else "ssd_read")))
