"""Hand-computed cases on one GPU with constant costs: the simulator must match to the microsecond."""

import pytest

from tests.sim.helpers import cluster, cost, model, ondemand, static, workload
from warmsim.sim.simulation import Simulation

US = 1e-6


def run(w, bundle, c, spec=None):
    s = Simulation(w, {"a": model()}, spec or cluster(), c, bundle)
    rec = s.run()
    return s, rec.requests_table(), rec.timeline_table()


def test_static_one_request_prefill_then_decode():
    # prefill 0.02 s + 0.001 s/token * 100 tokens = 0.12 s; then 9 decode steps of 0.01 s.
    c = cost(prefill_base_s=0.02, prefill_per_token_s=0.001)
    _, req, _ = run(workload([1.0], [100], [10]), static({"a": 1}), c)
    assert req.first_token_s[0] == pytest.approx(1.12, abs=US)
    assert req.finish_s[0] == pytest.approx(1.12 + 9 * 0.01, abs=US)
    assert req.status[0] == "completed" and req.start_kind[0] == "warm"


def test_arrival_joins_at_the_next_decode_step_boundary():
    c = cost(prefill_base_s=0.02)
    _, req, _ = run(workload([0.0, 0.5], [100, 100], [100, 50]), static({"a": 1}), c)
    # r0: first token 0.02; 48 steps done by 0.5, the 49th ends at 0.51; r1 prefills until 0.53.
    assert req.first_token_s.tolist() == pytest.approx([0.02, 0.53], abs=US)
    # then 49 steps with both (r1 finishes at 1.02), one more for r0.
    assert req.finish_s.tolist() == pytest.approx([1.03, 1.02], abs=US)


def test_ondemand_cold_start_event_log_and_ttft():
    # process 1 s, weights over a 10 GB/s link, engine init 1 s and its profiling forward (one
    # prefill of max_batched_tokens: 0.01 s), then the request's prefill 0.01 s.
    c = cost(process_start=1.0, engine_init=1.0, bandwidth=10e9, prefill_base_s=0.01)
    m = model()
    s, req, tl = run(workload([2.0], [10], [1]), ondemand(), c)
    load = m.shard_bytes / 10e9
    ev = tl[(tl.kind == "instance")][["time_s", "state"]].values.tolist()
    expected = [[2.0, "starting"], [3.0, "loading"], [3.0 + load, "initialising"], [4.01 + load, "active"]]
    assert [e[1] for e in ev[:4]] == [e[1] for e in expected]
    assert [e[0] for e in ev[:4]] == pytest.approx([e[0] for e in expected], abs=US)
    assert req.first_token_s[0] == pytest.approx(4.01 + load + 0.01, abs=US)
    assert req.start_kind[0] == "cold"
    assert s.recorder.counters["a"]["cold_starts"] == 1


def test_cold_start_from_ssd_shares_the_node_link():
    # Two TP1 models start together from one SSD: each gets half its bandwidth.
    c = cost(process_start=0.0, engine_init=0.0, bandwidth=10e9, prefill_base_s=0.0)
    spec = cluster(gpus=2, bw=10e9)
    w = workload([0.0, 0.0], [10, 10], [1, 1], models=("a", "b"), model_idx=[0, 1])
    s = Simulation(w, {"a": model("a"), "b": model("b")}, spec, c, ondemand(source="ssd"))
    req = s.run().requests_table()
    shard = model().shard_bytes
    assert req.first_token_s.tolist() == pytest.approx([2 * shard / 10e9] * 2, abs=US)


def test_request_longer_than_max_model_len_is_dropped_with_reason():
    _, req, _ = run(workload([0.0], [2000], [100]), static({"a": 1}), cost())
    assert req.status[0] == "dropped" and req.drop_reason[0] == "exceeds_max_model_len"
