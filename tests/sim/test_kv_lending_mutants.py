"""KV lending inside the simulator (sim/kv_lending.py), by hand: the loop lends freed blocks one at a
time and gives them back through ``reclaim`` when the running count rises, it skips engines that share
their GPU and engines that are not active, and a reclaim that fits the pool exactly evicts nothing.
Written for the mutants of sim/kv_lending.py that tests/sim/test_reserve_evict.py left alive
(docs/testing.md); same sizes as there (7B, 16-token blocks of 8 MiB).
"""

import pytest

from tests.sim.helpers import cluster, cost, model, workload
from tests.sim.test_reserve_evict import BLOCK, bundle, left, one_gpu, reserved_with_two_replicas
from warmsim.policies.types import DRAINING, Activate
from warmsim.policies.warmserve.kv_reserve import KVReservePolicy
from warmsim.sim.engine import EngineSpec
from warmsim.sim.simulation import Simulation

US = 1e-6


def test_the_loop_lends_one_block_at_a_time_and_gives_one_back():
    # 6 blocks; lending period 0.25 s, 2 requests per instance: target free = 6 x running // 2.
    # r0 at 0 (prompt 10, 5 out): 1 block, done at 0.05 -> 1 freed.
    # 0.25: nothing runs, target 0, 6 free, 1 freed -> lend 1 (KV on the GPU 6 -> 5 blocks).
    # r1 at 0.3 (prompt 10, 1 token): done at 0.31 -> 1 freed. 0.5: lend 1 more (-> 4 blocks).
    # r2 at 0.6 (prompt 20, 20 out): 2 blocks, first token 0.61, 19 steps -> 0.80.
    # 0.75: 1 running, target 3, free 6 - 2 lent - 2 used = 2: give back min(1, 2) = 1 (-> 5 blocks).
    w = workload([0.0, 0.3, 0.6], [10, 10, 20], [5, 1, 20])
    policy = KVReservePolicy(period_s=0.25, per_instance=2, give_back=True)
    s = Simulation(w, {"a": model()}, one_gpu(6), cost(prefill_base_s=0.01), bundle(policy, models=("a",)),
                   EngineSpec(block_size=16))
    req = s.run().requests_table()
    kv = []
    for t, g, _u, _p, k in s.recorder.memory:
        if g == 0 and k != (kv[-1][1] if kv else 0):
            kv.append((round(float(t), 9), k))
    assert kv == [(0.0, 6 * BLOCK), (0.25, 5 * BLOCK), (0.5, 4 * BLOCK), (0.75, 5 * BLOCK)]
    assert req.finish_s.tolist() == pytest.approx([0.05, 0.31, 0.80], abs=US)
    assert next(iter(s.instances.values())).engine.reserved == 1


def two_engines(share0: float):
    """GPU 0: an engine of compute share ``share0``; GPU 1: an engine alone. Both freed 2 blocks."""
    w = workload([100.0], [10], [1], models=("a", "b"))
    s = Simulation(w, {"a": model("a"), "b": model("b")}, cluster(gpus=2), cost(),
                   bundle(KVReservePolicy(period_s=0.5, per_instance=32), instances={}, models=("a", "b")),
                   EngineSpec(block_size=16))
    i0 = s.apply_activate(Activate("a", (0,), compute_share=share0, kv_bytes_per_gpu=10 * BLOCK), ready_at_start=True)
    i1 = s.apply_activate(Activate("b", (1,), kv_bytes_per_gpu=10 * BLOCK), ready_at_start=True)
    s.env.run(until=0.1)
    for i in (i0, i1):
        i.engine.freed = 2
    s.kv.dirty |= {i0.id, i1.id}
    s.env.process(s.kv.loop())
    return s, i0, i1


def test_an_engine_sharing_its_gpu_lends_nothing_and_does_not_stop_the_others():
    s, i0, i1 = two_engines(0.5)
    s.env.run(until=0.7)
    assert (i0.engine.reserved, i1.engine.reserved) == (0, 2)
    s, i0, i1 = two_engines(1.0)
    s.env.run(until=0.7)
    assert (i0.engine.reserved, i1.engine.reserved) == (2, 2)


def test_an_engine_that_is_not_active_lends_nothing():
    s, i0, i1 = two_engines(1.0)
    i0.state = DRAINING
    s.env.run(until=0.7)
    assert (i0.engine.reserved, i1.engine.reserved) == (0, 2)


def test_a_reclaim_that_fits_the_free_pool_exactly_evicts_nothing():
    # After the two replicas, the pool has 3500 x 8 MiB + 4 MiB - 2 x 12,854 MiB = 2296 MiB = 287 blocks
    # free: taking back 287 blocks needs no eviction.
    s, inst, gpu = reserved_with_two_replicas()
    assert gpu.mem.free_bytes == 287 * BLOCK
    s.reclaim_kv(inst, 287)
    assert left(s) == ["b", "c"] and inst.engine.reserved == 3500 - 287 and gpu.mem.free_bytes == 0
