"""KV reservation, reclaim and replica eviction through the simulator's own paths (``_kv_loop``,
``_set_reserved``, ``reclaim_kv``, ``apply_activate``), by hand.

Llama-2-7B with 16-token blocks: a KV block is 16 x 512 KiB = 8 MiB per GPU; a TP1 weight shard is
13,478,395,904 B (6,738,415,616 parameters x 2 B, rounded up to 2 MiB).
"""

import pytest

from tests.sim.helpers import GIB, cluster, cost, model, workload
from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.ondemand import FirstFitActivator
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.static import StaticPlacer
from warmsim.policies.types import Activate, Prewarm
from warmsim.policies.warmserve.kv_reserve import KVReservePolicy
from warmsim.sim.engine import EngineSpec
from warmsim.sim.memory import KV
from warmsim.sim.simulation import Simulation

US = 1e-6
MIB = 1 << 20
BLOCK = 8 * MIB
SHARD = 13_478_395_904


def test_shard_and_block_sizes_by_hand():
    assert model().shard_bytes == SHARD and 16 * model().kv_bytes_per_token_per_gpu == BLOCK


def bundle(kv_policy=None, instances=None, models=("a", "b", "c")):
    return Bundle("t", LeastLoadedRouter(32), NoAutoscaler(), FirstFitActivator(),
                  initial=StaticPlacer(instances or {"a": 1}), scale_on_miss=False, kv_policy=kv_policy)


def one_gpu(kv_blocks: int, extra_mib: int = 4):
    """One GPU whose pool is a 7B shard plus ``kv_blocks`` blocks and ``extra_mib`` MiB."""
    return cluster(gpus=1, hbm_gib=(SHARD + kv_blocks * BLOCK + extra_mib * MIB) / GIB, frac=1.0)


# ---- reservation by the KV loop -------------------------------------------------------------

def kv_run(policy):
    # 6 blocks. Request 0 at 0 s (prompt 20, 10 out): 2 blocks, done at 0.01 + 9 x 0.01 = 0.10 s,
    # freeing 2 blocks. Request 1 at 0.7 s (prompt 70, 2 out) needs ceil(71/16) = 5 blocks.
    w = workload([0.0, 0.7], [20, 70], [10, 2])
    s = Simulation(w, {"a": model()}, one_gpu(6), cost(prefill_base_s=0.01), bundle(policy, models=("a",)),
                   EngineSpec(block_size=16))
    req = s.run().requests_table()
    kv = []  # (time, KV bytes on GPU 0) at each change of the KV bytes
    for t, g, _u, _p, k in s.recorder.memory:
        if g == 0 and k != (kv[-1][1] if kv else 0):
            kv.append((round(float(t), 9), k))
    return s, req, kv


def test_kv_loop_lends_freed_blocks_to_the_pool_and_takes_them_back_when_needed():
    # Tick 0.5 s: nothing in flight, so the target is 0 free blocks; 6 are free but only the 2 freed
    # since the last tick may be reserved -> KV held on the GPU drops from 6 to 4 blocks.
    # 0.7 s: request 1 needs 5 blocks, 4 are free: the engine reclaims 1 (the pool has room, no
    # eviction) -> 5 blocks held, 1 reserved.
    s, req, kv = kv_run(KVReservePolicy(period_s=0.5, per_instance=32, give_back=True))
    assert kv == [(0.0, 6 * BLOCK), (0.5, 4 * BLOCK), (0.7, 5 * BLOCK)]
    e = next(iter(s.instances.values())).engine
    assert (e.total_blocks, e.reserved) == (6, 1)
    assert req.finish_s.tolist() == pytest.approx([0.10, 0.72], abs=US)


def test_a_system_without_reservation_keeps_its_kv():
    s, req, kv = kv_run(None)
    assert kv == [(0.0, 6 * BLOCK)]
    assert next(iter(s.instances.values())).engine.reserved == 0
    assert req.finish_s.tolist() == pytest.approx([0.10, 0.72], abs=US)


# ---- reclaim evicts prewarmed replicas, newest first ------------------------------------------

def reserved_with_two_replicas(total=4000, reserve=3500, prompt=10, arrival=100.0):
    # GPU pool = 7B shard + ``total`` blocks + 4 MiB; instance a holds ``total`` KV blocks.
    # Reserving lends ``reserve`` x 8 MiB (+ the 4 MiB spare) to the pool; replica b (t = 0) and
    # replica c (t = 1) take 2 x 13,478,395,904 B = 3213.5 blocks' worth of it.
    w = workload([arrival], [prompt], [1], models=("a", "b", "c"))
    s = Simulation(w, {m: model(m) for m in "abc"}, one_gpu(total), cost(), bundle(), EngineSpec(block_size=16))
    s.activations.initial()
    s.requests.start_arrivals()
    inst = next(iter(s.instances.values()))
    assert inst.engine.total_blocks == total
    s.kv.set_reserved(inst, reserve)
    gpu = s.cluster.gpus[0]
    assert gpu.mem.bytes_of(KV, inst.id) == (total - reserve) * BLOCK
    assert gpu.mem.free_bytes == reserve * BLOCK + 4 * MIB
    assert inst.engine.free_blocks == total - reserve
    s.apply_prewarm(Prewarm("b", (0,)))
    s.env.run(until=1.0)
    s.apply_prewarm(Prewarm("c", (0,)))
    s.env.run(until=2.0)
    assert gpu.mem.free_bytes == reserve * BLOCK + 4 * MIB - 2 * SHARD
    return s, inst, gpu


def left(s):
    return sorted(r.model.name for r in s.replicas.values())


def test_reclaim_evicts_the_newest_replica_first_and_only_as_many_as_needed():
    s, inst, gpu = reserved_with_two_replicas()
    # 1000 blocks = 8,388,608,000 B > 2,403,336,192 B free: evict the newest (c, created at 1 s);
    # then 15,881,732,096 B are free, enough: b stays. All 1000 blocks go back to the engine.
    s.reclaim_kv(inst, 1000)
    assert left(s) == ["b"]
    assert s.recorder.counters["c"]["evictions"] == 1 and s.recorder.counters["b"]["evictions"] == 0
    assert inst.engine.reserved == 2500 and inst.engine.free_blocks == 1500
    assert gpu.mem.bytes_of(KV, inst.id) == 1500 * BLOCK
    ev = [r for r in s.recorder.timeline if r[1] == "replica" and r[5] == "evicted"]
    assert [(r[3], r[6]) for r in ev] == [("c", f"KV reclaimed by instance {inst.id}")]
    # The other 2500 blocks: 7,493,124,096 B free, so b goes too; then exactly 2500 blocks are free.
    s.reclaim_kv(inst, 2500)
    assert left(s) == [] and inst.engine.reserved == 0 and gpu.mem.bytes_of(KV, inst.id) == 4000 * BLOCK


def test_reclaim_without_need_evicts_nothing():
    s, inst, _ = reserved_with_two_replicas()
    s.reclaim_kv(inst, 286)  # 286 blocks fit in the 286.5 blocks' worth still free
    assert left(s) == ["b", "c"] and inst.engine.reserved == 3214


def test_an_engine_short_of_blocks_reclaims_on_admission_evicting_the_newest_replica():
    # 3300 blocks, 3214 reserved: the engine has 86 free; the pool has 3214 + 0.5 - 3213.5 = 1
    # block's worth free once both replicas are in. A 2000-token prompt needs ceil(2001/16) = 126
    # blocks: the engine reclaims 40, the pool is short, so replica c (the newest) is evicted, and
    # the request (arriving at 2.5 s) is admitted: its first and only token after a 0.01 s prefill.
    s, inst, gpu = reserved_with_two_replicas(total=3300, reserve=3214, prompt=2000, arrival=2.5)
    assert gpu.mem.free_bytes == BLOCK and inst.engine.free_blocks == 86
    s.env.run(until=3.0)
    assert left(s) == ["b"] and inst.engine.reserved == 3174
    assert s.recorder.first_token[0] == pytest.approx(2.51, abs=US)
    assert gpu.mem.bytes_of(KV, inst.id) == 126 * BLOCK


# ---- eviction on activation spans every GPU of the TP group ----------------------------------

def test_activation_evicts_replicas_on_every_gpu_of_a_tp_group():
    # a is TP2. Replica of b on GPU 1 (the group's 2nd GPU), of c on GPU 0, of c on GPU 2 (outside).
    models = {"a": model("a", tp=2), "b": model("b"), "c": model("c")}
    w = workload([100.0], [10], [1], models=("a", "b", "c"))
    s = Simulation(w, models, cluster(gpus=4), cost(), Bundle("t", LeastLoadedRouter(32), NoAutoscaler(),
                                                                FirstFitActivator()))
    s.apply_prewarm(Prewarm("b", (1,)))
    s.apply_prewarm(Prewarm("c", (0,)))
    s.apply_prewarm(Prewarm("c", (2,)))
    s.env.run(until=10.0)
    ids = {(r.model.name, r.gpus): r.id for r in s.replicas.values()}
    inst = s.apply_activate(Activate("a", (0, 1)))
    assert [(r.model.name, r.gpus) for r in s.replicas.values()] == [("c", (2,))]
    assert s.recorder.counters["b"]["evictions"] == 1 and s.recorder.counters["c"]["evictions"] == 1
    ev = [(r[2], r[6]) for r in s.recorder.timeline if r[1] == "replica" and r[5] == "evicted"]
    assert ev == [(ids[("b", (1,))], "activation of a"), (ids[("c", (0,))], "activation of a")]  # id order
    # The KV cache then takes everything the weights leave on the fuller GPU, on both GPUs alike.
    for g in (0, 1):
        assert s.cluster.gpus[g].mem.bytes_of("prewarm", ids[("b", (1,))]) == 0
        assert s.cluster.gpus[g].mem.bytes_of(KV, inst.id) == inst.kv_bytes_per_gpu


def test_activation_without_evict_on_activate_keeps_overlapping_replicas():
    models = {"a": model("a", tp=2), "b": model("b")}
    w = workload([100.0], [10], [1], models=("a", "b"))
    b = Bundle("t", LeastLoadedRouter(32), NoAutoscaler(), FirstFitActivator(), evict_on_activate=False)
    s = Simulation(w, models, cluster(gpus=2), cost(), b)
    s.apply_prewarm(Prewarm("b", (1,)))
    s.env.run(until=10.0)
    s.apply_activate(Activate("a", (0, 1)))
    assert [(r.model.name, r.gpus) for r in s.replicas.values()] == [("b", (1,))]
