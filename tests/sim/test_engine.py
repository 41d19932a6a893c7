"""Continuous batching: admission limits, KV growth, preemption by recompute."""

import pytest

from tests.sim.helpers import cluster, cost, model, static, workload
from warmsim.sim.engine import EngineSpec
from warmsim.sim.simulation import Simulation


def run(w, engine, spec=None):
    s = Simulation(w, {"a": model()}, spec or cluster(), cost(prefill_base_s=0.01), static({"a": 1}), engine)
    return s, s.run().requests_table()


def test_max_num_seqs_bounds_the_batch():
    # Two requests at t=0 but one sequence at a time: the second starts after the first finishes.
    _, req = run(workload([0.0, 0.0], [10, 10], [5, 5]), EngineSpec(block_size=16, max_num_seqs=1))
    assert req.first_token_s.tolist() == pytest.approx([0.01, 0.01 + 0.04 + 0.01])


def test_kv_exhaustion_preempts_and_recomputes_but_everything_completes():
    # A GPU small enough that two long sequences cannot both grow to full length.
    m = model()
    block = 16 * m.kv_bytes_per_token_per_gpu
    hbm = (m.shard_bytes + 20 * block) / 0.9 / 2**30 + 1e-3
    spec = cluster(hbm_gib=hbm)
    s, req = run(workload([0.0, 0.0], [100, 100], [200, 200]), EngineSpec(block_size=16), spec)
    assert (req.status == "completed").all()
    assert req.preemptions.sum() >= 1
    # the preempted sequence kept its first token: TTFTs are from the first prefill
    assert (req.first_token_s < 0.1).all()
