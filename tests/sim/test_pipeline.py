"""A cold start pipelined over two servers and its consolidation (``sim/mechanisms/pipeline.py``), by hand.

Set-up: two nodes of one GPU each; each node's NIC carries ``SHARD / 2`` bytes/s (a whole 7B shard takes
2 s over one NIC, half of it 1 s), PCIe ten times that; the weights come from remote storage. Process
start 0.5 s, engine init 1 s, no other start stage; the start path prefetches (the weights move from
the instance's creation). Prefill 0.05 s, decode steps 0.01 s, a stage hop 1 ms plus the activations'
bytes over the NIC.
"""

import pytest

from tests.sim.helpers import GIB, cost, model, workload
from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.hydraserve import HydraServeActivator
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.types import Activate
from warmsim.sim.cluster import ClusterSpec
from warmsim.sim.errors import PlanError
from warmsim.sim.mechanisms.pipeline import PipelineKnobs
from warmsim.sim.memory import KV, WEIGHTS
from warmsim.sim.models import align_up
from warmsim.sim.simulation import Simulation

US = 1e-6
SHARD = model().shard_bytes
NIC = SHARD / 2
HIDDEN_BYTES = 4096 * 2  # Llama-2-7B hidden size x fp16


def sim(out_tokens=200, **knobs) -> Simulation:
    sp = ClusterSpec(nodes=3, gpus_per_node=1, gpu_hbm_bytes=80 * GIB, memory_fraction=0.9, pcie_pinned_bw=10 * SHARD,
                     pcie_pageable_bw=SHARD, host_mem_bw=100 * SHARD, ssd_bw=SHARD, nic_bw=NIC, nvlink_bw=100 * SHARD)
    c = cost(process_start=0.5, engine_init=1.0, pipeline_hop=0.001, prefill_base_s=0.05)
    b = Bundle("hydra", LeastLoadedRouter(32), NoAutoscaler(), prefetch=True, profile_run=False,
               extras={"pipeline": PipelineKnobs(**knobs)})
    return Simulation(workload([0.0], [10], [out_tokens]), {"a": model()}, sp, c, b)


def test_the_pipeline_holds_the_whole_model_on_its_first_stage_and_half_on_the_second():
    s = sim()
    inst = s.apply_activate(Activate("a", (0,), source="remote", stages=((1,),)))
    kv = inst.kv_bytes_per_gpu
    assert s.cluster.gpus[0].mem.bytes_of(WEIGHTS, inst.id) == SHARD
    assert s.cluster.gpus[0].mem.bytes_of(KV, inst.id) == kv
    assert s.cluster.gpus[1].mem.bytes_of(WEIGHTS, inst.id) == align_up(-(-SHARD // 2))
    assert s.cluster.gpus[1].mem.bytes_of(KV, inst.id) == align_up(-(-kv // 2))
    assert inst.gpus == (0, 1) and s.snapshot().busy_gpus() == {0, 1}


def test_a_pipelined_cold_start_and_its_consolidation():
    s = sim()
    inst = s.apply_activate(Activate("a", (0,), source="remote", stages=((1,),)))
    rec = s.run()
    req, tl = rec.requests_table(), rec.timeline_table()
    # Each GPU fetches half a shard over its own node's NIC: 1 s, longer than the 0.5-s process start;
    # then engine init 1 s: serving at 2 s. The prefill crosses one stage boundary.
    hop_p = 0.001 + 10 * HIDDEN_BYTES / NIC
    assert req.first_token_s[0] == pytest.approx(2.0 + 0.05 + hop_p, abs=US)
    # 199 decode steps, each 0.01 s plus a hop (the run was priced when it started, as a pipeline).
    hop_d = 0.001 + 1 * HIDDEN_BYTES / NIC
    assert req.finish_s[0] == pytest.approx(2.0 + 0.05 + hop_p + 199 * (0.01 + hop_d), abs=1e-6)
    # Consolidation at the 2-s check: the first stage fetches the other half over its NIC (1 s), then the
    # in-flight sequence's KV on the second stage (half of one 256-token block) moves over the NICs.
    block = 256 * model().kv_bytes_per_token_per_gpu
    done = 3.0 + (block / 2) / NIC
    ev = tl[tl.kind == "pipeline"]
    assert list(ev.state) == ["stages", "consolidating", "consolidated"]
    assert ev.time_s.tolist() == pytest.approx([0.0, 2.0, done], abs=US)
    assert inst.gpus == (0,) and not s.cluster.gpus[1].instances
    assert s.cluster.gpus[1].mem.used_bytes == 0
    # GPU-seconds: GPU 0 for the whole run, GPU 1 until the consolidation.
    assert rec.gpu_seconds == pytest.approx(rec.end_s + done, abs=US)
    assert "pp 2: 1 (mean start 2.00 s); 1 consolidated" in s.mechanism_lines()[0]


def test_the_lone_pipeline_starts_faster_than_one_server_fetching_everything():
    s = sim(consolidate=False)
    s.apply_activate(Activate("a", (0,), source="remote"))  # one server: a whole shard over one NIC, 2 s
    one = s.run().requests_table().first_token_s[0]
    assert one == pytest.approx(2.0 + 1.0 + 0.05, abs=US)
    s = sim(consolidate=False)
    s.apply_activate(Activate("a", (0,), source="remote", stages=((1,),)))
    assert s.run().requests_table().first_token_s[0] < one - 0.9


def test_without_consolidation_the_stages_stay():
    s = sim(consolidate=False)
    inst = s.apply_activate(Activate("a", (0,), source="remote", stages=((1,),)))
    s.run()
    assert inst.gpus == (0, 1) and s.mechanism_lines()[0].endswith("0 consolidated")


@pytest.mark.parametrize("stages, match", [(((0,),), "distinct nodes"), (((1, 2),), "needs 1 distinct GPUs")])
def test_bad_pipelines_are_refused(stages, match):
    s = sim()
    with pytest.raises(PlanError, match=match):
        s.apply_activate(Activate("a", (0,), source="remote", stages=stages))


def test_the_planner_pipelines_only_when_one_nic_misses_the_ttft_slo():
    # HydraServe's `ours`: 13 GB at 16 Gbps: 6.5 s + 2 s > 7.5 s, so pp 2 (3.25 s + 2 ms x 1.5 + 2 s).
    a = HydraServeActivator()
    assert a.plan_pp("m", 13.0, [16.0, 16.0, 16.0]) == 2
    assert a.plan_pp("m", 13.0, [16.0]) == 1  # one node only: the fallback
    assert a.plan_pp("m", 13.0, [200.0, 200.0]) == 1  # 0.52 s + 2 s: one server is enough
    # 26 GB (13B) at 16 Gbps: 13 s + 2 s > 12 s; pp 2: 6.5 s + 2 s < 12 s.
    assert a.plan_pp("m", 26.0, [16.0, 16.0]) == 2
    # 138 GB (70B, SLO 12 s): even pp 4 needs 17 s + 2 s: the planner falls back to one server.
    assert a.plan_pp("m", 138.0, [16.0] * 4) == 1
    # The stages take the nodes with the largest shares, and the smallest of those sets the fetch: with
    # one 16-Gbps node and two at 5 Gbps, pp 2 needs 26/2/5 x 8 s + 2 s = 22.8 s, pp 3 15.9 s: fallback.
    assert a.plan_pp("m", 26.0, [16.0, 8.0, 16.0]) == 2
    assert a.plan_pp("m", 26.0, [16.0, 5.0, 5.0]) == 1


def test_the_planner_places_stages_on_the_nodes_with_the_largest_nic_share():
    from tests.policies.snapshots import inst, snap
    from warmsim.policies.types import ModelView
    models = {"m": ModelView("m", 26_000_000_000, 1, 26_000_000_000)}
    # 16 Gbps NICs; node 0 already pulls one checkpoint (an instance loading there): half its NIC.
    sn = snap(n_nodes=3, gpus_per_node=2, models=models, instances=(inst(7, "m", (0,), state="loading"),),
              bw={"nic": 2e9})
    act = HydraServeActivator().choose(sn, "m")
    assert act.gpus == (2,) and act.stages == ((4,),) and act.source == "remote"
