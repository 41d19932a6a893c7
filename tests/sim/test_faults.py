"""Faults in the model (sim/faults.py), by hand on tiny clusters and through the paper setup.

Costs are chosen so a cold start is only its weight transfer: the 7B shard (13,478,395,904 B) over a
10 GB/s PCIe link (host memory faster) takes 1.3478 s; prefill 0.01 s; decode 0.01 s per token.
"""

import pytest

from tests.sim.helpers import GIB, cost, model, ondemand, workload
from warmsim.sim.cluster import ClusterSpec
from warmsim.sim.errors import UserError
from warmsim.sim.faults import Fault, parse_faults
from warmsim.sim.simulation import SimSpec, Simulation

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


# ---- each documented effect of a fault, by hand (issue 22 §4): each test fails when that effect is removed

def _bundle(max_inflight=32):
    from warmsim.policies.bundle import Bundle
    from warmsim.policies.ondemand import FirstFitActivator, KeepAliveAutoscaler
    from warmsim.policies.routing import LeastLoadedRouter
    b = Bundle("ondemand", LeastLoadedRouter(max_inflight), KeepAliveAutoscaler(keep_alive_s=60),
               FirstFitActivator("host_pinned"))
    b.profile_run = False  # a start is its load alone
    return b


def _sim(w, models, cluster_spec, faults, bundle=None, on_failure="retry"):
    c = cost(process_start=0.0, engine_init=0.0, prefill_base_s=0.01, load_overhead=0.0)
    return Simulation(w, models, cluster_spec, c, bundle or _bundle(),
                      spec=SimSpec(request_timeout_s=20, drain_s=30, faults=tuple(faults), on_failure=on_failure))


def test_the_loads_onto_a_failed_gpu_stop_and_free_the_link_they_shared():
    # Models a and b start at t=0 on GPUs 0 and 1 of one node, both loading from host memory whose
    # link (10 GB/s) they share: 5 GB/s each. GPU 0 fails at 1 s: its load stops, so b's load has the
    # whole link from then on: 5e9 B moved by 1 s, the rest at 10 GB/s -> loaded at 1 + (SHARD - 5e9) / 1e10,
    # first token 0.01 s later. (Were a's flow left running, b would load at 5 GB/s to SHARD / 5e9 = 2.70 s.)
    sp = spec()
    sp = ClusterSpec(**{**sp.__dict__, "host_mem_bw": 10e9})
    w = workload([0.0, 0.0], [10, 10], [1, 1], models=("a", "b"), model_idx=[0, 1], duration=30)
    s = _sim(w, {"a": model("a"), "b": model("b")}, sp, [Fault("gpu_down", 1.0, gpu=0)])
    req = s.run().requests_table()
    assert req.first_token_s[1] == pytest.approx(1.0 + (SHARD - 5e9) / 10e9 + 0.01)
    assert not any(f.tag == ("instance", 1) for f in s.cluster.net.flows)


def test_a_prewarmed_replica_on_a_failed_gpu_is_lost_and_its_memory_with_it():
    # A placer prewarms one replica of a on GPU 1 at t=0 (loaded by LOAD s); GPU 1 fails at 5 s (a
    # request at 10 s keeps the run going past it; the instance on GPU 0 serves both).
    from warmsim.policies.types import Prewarm

    class OneReplica:
        period_s = 1.0

        def __init__(self):
            self.done = False

        def plan(self, snap, predictions):
            if self.done:
                return []
            self.done = True
            return [Prewarm("a", (1,), "host_pinned")]

    b = _bundle()
    b.placer = OneReplica()
    w = workload([0.0, 10.0], [10, 10], [1, 1], duration=30)
    s = _sim(w, {"a": model()}, spec(), [Fault("gpu_down", 5.0, gpu=1)], bundle=b)
    rec = s.run()
    assert rec.fault_log[0][1:] == ("GPU 1 fails at 5 s", 0, 1, 0, 0)  # no instance there, one replica
    assert not s.replicas and s.cluster.gpus[1].mem.used == 0
    ev = [r for r in rec.timeline if r[1] == "replica"]
    assert (ev[-1][0], ev[-1][5], ev[-1][6]) == (5.0, "evicted", "GPU 1 failed")


def test_a_failed_node_loses_its_host_memory_cache_and_only_its_own():
    # Node 0 fails at 5 s (a request at 10 s keeps the run going; it starts on node 1, from its cache).
    w = workload([0.0, 10.0], [10, 10], [1, 1], duration=30)
    s = _sim(w, {"a": model()}, spec(gpus=1, nodes=2), [Fault("node_down", 5.0, node=0)])
    assert "a" in s.cluster.nodes[0].host_cache and "a" in s.cluster.nodes[1].host_cache  # unbounded caches
    s.run()
    assert "a" not in s.cluster.nodes[0].host_cache and not s.cluster.nodes[0].host_cache.entries
    assert "a" in s.cluster.nodes[1].host_cache


def test_retried_requests_rejoin_the_router_queue_in_arrival_order():
    # The router admits 2 requests per instance. r0 (t=0) and r1 (t=0.1) go to instance 1, loading on
    # GPU 0; r2 (t=0.2) waits at the router (full, and an instance is already starting). GPU 0 fails at
    # 0.9 s: r0 and r1 go back to the router *before* r2 (arrival order), not after it. The autoscaler's
    # 1.0 s tick starts instance 2 on GPU 1, which takes the first two of the queue: r0 and r1 prefill
    # together when it is ready (1.0 + LOAD, first tokens 0.01 s later, one output token each, so they
    # finish then); r2 is routed at the router's next re-check (sim.retry_s = 1 s: at 3 s) and prefills
    # then. (Queued behind r2, r1 would be the one served at 3.01 s.)
    w = workload([0.0, 0.1, 0.2], [10] * 3, [1] * 3, duration=30)
    s = _sim(w, {"a": model()}, spec(), [Fault("gpu_down", 0.9, gpu=0)], bundle=_bundle(max_inflight=2))
    req = s.run().requests_table()
    ready = 1.0 + LOAD
    assert list(req.first_token_s) == pytest.approx([ready + 0.01, ready + 0.01, 3.0 + 0.01])
    assert list(req.retries) == [1, 1, 0] and list(req.first_instance) == [1, 1, -1]
    assert list(req.instance) == [2, 2, 2]


def test_retries_are_counted_per_attempt_and_not_for_dropped_requests():
    s, rec, req = run([Fault("gpu_down", LOAD + 1.0, gpu=0)], on_failure="drop")
    assert req.retries[0] == 0 and req.first_instance[0] == -1 and req.instance[0] == 1
    _, _, req = run([Fault("gpu_down", LOAD + 1.0, gpu=0)])
    assert req.retries[0] == 1 and req.first_instance[0] == 1 and req.instance[0] == 2
