"""Faults in the model (sim/faults.py), by hand on tiny clusters and through the paper setup.

Costs are chosen so a cold start is only its weight transfer: the 7B shard (13,478,395,904 B) over a
10 GB/s PCIe link (host memory faster) takes 1.3478 s; prefill 0.01 s; decode 0.01 s per token.
"""

import pytest

from warmsim.sim.cluster import ClusterSpec
from warmsim.sim.errors import UserError
from warmsim.sim.faults import Fault, parse_faults
from warmsim.sim.simulation import SimSpec, Simulation
from tests.sim.helpers import GIB, cost, model, ondemand, workload

SHARD = 13_478_395_904
LOAD = SHARD / 10e9


def spec(gpus=2, nodes=1):
    return ClusterSpec(nodes=nodes, gpus_per_node=gpus, gpu_hbm_bytes=80 * GIB, memory_fraction=0.9,
                       pcie_pinned_bw=10e9, pcie_pageable_bw=2.5e9, host_mem_bw=100e9, ssd_bw=10e9, nic_bw=10e9,
                       nvlink_bw=300e9)


def run(faults, arrivals=(0.0,), outputs=(200,), on_failure="retry", gpus=2):
    n = len(arrivals)
    w = workload(list(arrivals), [10] * n, list(outputs), duration=30)
    c = cost(process_start=0.0, engine_init=0.0, prefill_base_s=0.01, load_overhead=0.0)
    b = ondemand(keep_alive_s=60)
    b.profile_run = False  # a start is its load alone
    s = Simulation(w, {"a": model()}, spec(gpus), c, b,
                   spec=SimSpec(request_timeout_s=20, drain_s=30, faults=tuple(faults), on_failure=on_failure))
    rec = s.run()
    return s, rec, rec.requests_table()


def test_a_gpu_that_fails_under_a_running_request_loses_the_instance_and_the_request_is_retried_elsewhere():
    # The request starts on GPU 0 at LOAD s and would finish 2 s later; GPU 0 fails 1 s past the load.
    # The retried request waits at the router; the autoscaler's next tick (0.5 s grid) sees no live
    # instance for the load and starts one on GPU 1 (GPU 0 is failed, so busy to the policy), which
    # loads and runs the request from scratch.
    t_fail = LOAD + 1.0
    s, rec, req = run([Fault("gpu_down", t_fail, gpu=0)])
    assert req.status[0] == "completed"
    assert s.cluster.gpus[0].failed and s.cluster.gpus[0].mem.used == 0
    t_retry = (int(t_fail / 0.5) + 1) * 0.5  # the first autoscaler tick after the failure: 2.5 s
    assert req.first_token_s[0] == pytest.approx(LOAD + 0.01)  # the first attempt's first token stands
    assert req.finish_s[0] == pytest.approx(t_retry + LOAD + 0.01 + 199 * 0.01)
    assert rec.fault_log[0][1:] == ("GPU 0 fails at 2.34784 s", 1, 0, 1, 0)
    insts = [r for r in rec.timeline if r[1] == "instance"]
    assert ("0", "failed") in {(r[4], r[5]) for r in insts if r[2] == 1}  # instance 1 on GPU 0 failed
    assert any(r[4] == "1" and r[5] == "active" for r in insts)  # its replacement ran on GPU 1


def test_with_on_failure_drop_the_requests_are_dropped_with_a_reason():
    s, rec, req = run([Fault("gpu_down", LOAD + 1.0, gpu=0)], on_failure="drop")
    assert req.status[0] == "dropped" and req.drop_reason[0] == "instance_lost"
    assert rec.fault_log[0][-2:] == (0, 1)


def test_a_load_that_fails_midway_loses_the_starting_instance_and_a_new_start_serves_the_request():
    # The load would end at LOAD s; it fails at 0.5 s; the request is held, the retry tick at 1 s
    # starts a new instance (first free GPU: GPU 0 again, it is healthy), which loads from scratch.
    s, rec, req = run([Fault("load_fail", 0.5)], outputs=(1,))
    assert req.status[0] == "completed"
    assert req.first_token_s[0] == pytest.approx(1.0 + LOAD + 0.01)
    assert rec.fault_log[0][2] == 1 and not s.cluster.gpus[0].failed


def test_a_degraded_link_slows_a_load_by_its_factor_until_restored():
    # PCIe at half capacity for the whole load: 2 x LOAD; restored at 1 s: 1 s at half rate moves
    # 5 GB, the rest at full rate.
    _, _, req = run([Fault("link_degrade", 0.0, gpu=0, link="pcie", factor=0.5)], outputs=(1,))
    assert req.first_token_s[0] == pytest.approx(2 * LOAD + 0.01)
    _, _, req = run([Fault("link_degrade", 0.0, gpu=0, link="pcie", factor=0.5, until_s=1.0)], outputs=(1,))
    assert req.first_token_s[0] == pytest.approx(1.0 + (SHARD - 5e9) / 10e9 + 0.01)


def test_a_fault_row_is_checked_against_the_cluster():
    assert parse_faults([{"kind": "node_down", "node": 1, "at_s": 600}], 2, 8) == (Fault("node_down", 600.0, node=1),)
    for row, msg in [({"kind": "meteor", "at_s": 1}, "kind"), ({"kind": "gpu_down", "at_s": 1}, "gpu"),
                     ({"kind": "node_down", "node": 2, "at_s": 1}, "node"),
                     ({"kind": "gpu_down", "gpu": 0, "at_s": -1}, "at_s"),
                     ({"kind": "link_degrade", "link": "pcie", "gpu": 0, "factor": 0, "at_s": 1}, "factor"),
                     ({"kind": "link_degrade", "link": "host_mem", "gpu": 0, "factor": 0.5, "at_s": 1}, "node"),
                     ({"kind": "gpu_down", "gpu": 0, "at_s": 1, "when": 2}, "unknown field")]:
        with pytest.raises(UserError, match=msg):
            parse_faults([row], 2, 8)


@pytest.mark.filterwarnings("ignore")
def test_the_paper_node_failure_accounts_for_every_request_and_shows_in_the_tail():
    from hydra import compose, initialize_config_dir

    from warmsim.experiments.builder import CONF_DIR, build_setup, system_config
    from warmsim.experiments.runner import run_system
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        base = ["workload.duration_s=240", "sim.request_timeout_s=60", "sim.drain_s=60"]
        cfg = compose(config_name="config", overrides=base + ["faults=node_down_paper",
                                                              "faults.events=[{kind: node_down, node: 1, at_s: 120}]"])
        ok_cfg = compose(config_name="config", overrides=base)
        setup, ok_setup = build_setup(cfg), build_setup(ok_cfg)
        runs = {s: run_system(setup, system_config(s), cfg) for s in ("static", "sllm", "muxserve", "warmserve")}
        ok = run_system(ok_setup, system_config("static"), ok_cfg)
    for name, r in runs.items():
        a = r.summary[r.summary.model == "ALL"].iloc[0]
        assert a.completed + a.dropped == a.requests, name
        assert len(r.faults) == 1, name
    # static cannot replace what node 1 held: its requests for those models time out
    assert runs["static"].summary.query("model == 'ALL'").dropped.iloc[0] > 0
    assert ok.summary.query("model == 'ALL'").dropped.iloc[0] == 0
    # MuxServe runs on node 0 only: the fault does not touch it
    assert "not used by this system" in runs["muxserve"].faults[0][1]
    # WarmServe loses what ran on node 1 and recovers through its own policies (new starts, no drops)
    w = runs["warmserve"]
    assert w.faults[0][2] > 0 and w.summary.query("model == 'ALL'").dropped.iloc[0] == 0
    after = w.timeline[(w.timeline.time_s >= 120) & (w.timeline.kind == "instance") & (w.timeline.state == "starting")]
    assert len(after) > 0
