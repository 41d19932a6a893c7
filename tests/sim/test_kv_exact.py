"""KV-cache accounting of the simulator's own engine, by hand: capacity per instance, admission with
a block for the first generated token, growth in decode, preemption of the newest sequence and its
recompute, exact finish times and preemption counts in a KV-tight run.

Llama-2-7B holds 2 (K, V) x 32 layers x 32 KV heads x 128 x 2 B = 512 KiB of KV per token; with
16-token blocks a block is 8 MiB per GPU at TP1 and 4 MiB per GPU at TP2.
"""

import pytest

from tests.sim.helpers import GIB, cluster, cost, model, static, workload
from warmsim.policies.types import Activate
from warmsim.sim.engine import EngineSpec
from warmsim.sim.simulation import Simulation

US = 1e-6
MIB = 1 << 20
BS = 16


def test_block_arithmetic_of_the_model():
    m, m2 = model(), model(tp=2)
    assert m.kv_bytes_per_token_per_gpu == 512 * 1024
    assert m2.kv_bytes_per_token_per_gpu == 256 * 1024


def kv_cluster(m, kv_mib: int, gpus: int = 1):
    """One node whose GPU pool is exactly the weight shard of ``m`` plus ``kv_mib`` MiB."""
    return cluster(gpus=gpus, hbm_gib=(m.shard_bytes + kv_mib * MIB) / GIB, frac=1.0)


def sim(w, spec, c=None, m=None, n=1):
    m = m or model()
    return Simulation(w, {"a": m}, spec, c or cost(prefill_base_s=0.01), static({"a": n}), EngineSpec(block_size=BS))


# ---- capacity per instance -------------------------------------------------------------------

@pytest.mark.parametrize("kv_mib,blocks", [(52, 6), (48, 6), (47, 5), (8, 1)])
def test_kv_capacity_is_free_bytes_over_block_bytes_rounded_down(kv_mib, blocks):
    # TP1 block = 16 x 512 KiB = 8 MiB: 52 MiB left after weights hold 6 blocks (4 MiB unused).
    s = sim(workload([100.0], [10], [1]), kv_cluster(model(), kv_mib))
    s.activations.initial()
    inst = next(iter(s.instances.values()))
    assert inst.engine.total_blocks == blocks
    assert inst.engine.free_blocks == blocks
    assert s.cluster.gpus[0].mem.bytes_of("kv", inst.id) == blocks * 8 * MIB


def test_kv_capacity_of_a_tp2_instance_counts_per_gpu_bytes():
    # TP2: a block is 16 x 256 KiB = 4 MiB on each GPU; 10 MiB left on each GPU -> 2 blocks.
    m = model(tp=2)
    s = sim(workload([100.0], [10], [1]), kv_cluster(m, 10, gpus=2), m=m)
    s.activations.initial()
    inst = next(iter(s.instances.values()))
    assert inst.gpus == (0, 1) and inst.engine.total_blocks == 2
    assert [s.cluster.gpus[g].mem.bytes_of("kv", inst.id) for g in (0, 1)] == [8 * MIB, 8 * MIB]


def test_an_explicit_kv_size_is_rounded_down_to_whole_blocks():
    s = sim(workload([100.0], [10], [1]), cluster(gpus=1))
    inst = s.apply_activate(Activate("a", (0,), kv_bytes_per_gpu=30 * MIB), ready_at_start=True)
    assert inst.engine.total_blocks == 3 and inst.kv_bytes_per_gpu == 24 * MIB


# ---- admission needs a block for the first generated token ------------------------------------

def test_a_prompt_filling_every_block_cannot_be_admitted():
    # 2 blocks = 32 tokens. Prompt 32: ceil(33 / 16) = 3 blocks > 2 -> dropped as too big for the
    # KV cache; prompt 31: ceil(32 / 16) = 2 -> admitted and completes (one token, no decode).
    s = sim(workload([0.0, 1.0], [32, 31], [1, 1]), kv_cluster(model(), 16))
    req = s.run().requests_table()
    assert req.status.tolist() == ["dropped", "completed"]
    assert req.drop_reason[0] == "exceeds_kv_capacity"
    assert req.first_token_s[1] == pytest.approx(1.01, abs=US)


def test_admission_holds_ceil_prompt_plus_one_over_block_size():
    # 6 blocks. Three prompts of 32 tokens need ceil(33 / 16) = 3 blocks each: two fit, the third
    # waits until they finish (10 tokens: prefill 0.01 s + 9 decode steps of 0.01 s = 0.10 s).
    req = sim(workload([0.0, 0.0, 0.0], [32, 32, 32], [10, 10, 10]), kv_cluster(model(), 48)).run().requests_table()
    assert req.first_token_s.tolist() == pytest.approx([0.01, 0.01, 0.11], abs=US)
    assert req.finish_s.tolist() == pytest.approx([0.10, 0.10, 0.20], abs=US)
    assert req.preemptions.tolist() == [0, 0, 0]


# ---- a KV-tight run: growth, preemption of the newest, recompute ---------------------------------

def tight():
    # 6 blocks (96 tokens). Two requests at 0 s, prompt 20, 40 tokens out. Prefill 0.01 s +
    # 0.001 s per prompt token; decode steps 0.01 s.
    c = cost(prefill_base_s=0.01, prefill_per_token_s=0.001)
    return sim(workload([0.0, 0.0], [20, 20], [40, 40]), kv_cluster(model(), 52), c=c)


def test_kv_tight_run_exact_times_and_preemptions():
    # 0.05: one prefill of 40 tokens (0.01 + 0.040); both hold ceil(21/16) = 2 blocks, ctx 21.
    # Decode: after n steps each holds ceil((21 + n) / 16) blocks; n = 27 (ctx 48, 3 blocks each,
    #   all 6 used) is the last that fits, so the run stops at 0.05 + 0.27 = 0.32.
    # 0.32: step 28 needs ceil(49/16) = 4 each: the newest (request 1, gen 28) is preempted, its
    #   3 blocks freed; it needs ceil(49/16) = 4 > 3 free to come back.
    # Request 0 alone: 12 steps (gen 28 -> 40, 4 blocks) -> finishes 0.32 + 0.12 = 0.44.
    # Request 1 recomputes prompt + generated = 48 tokens: 0.01 + 0.048 = 0.058 -> 0.498 (token 29),
    #   then 11 steps -> 0.608.
    req = tight().run().requests_table()
    assert req.first_token_s.tolist() == pytest.approx([0.05, 0.05], abs=US)
    assert req.finish_s.tolist() == pytest.approx([0.44, 0.608], abs=US)
    assert req.preemptions.tolist() == [0, 1]
    assert req.status.tolist() == ["completed", "completed"]


def test_kv_tight_run_engine_state_after_the_preemption():
    s = tight()
    s.activations.initial()
    s.requests.start_arrivals()
    e = next(iter(s.instances.values())).engine
    s.env.run(until=0.049)
    assert [q.blocks for q in e.running] == [2, 2] and e.used_blocks == 4  # ceil((20 + 1) / 16) each
    s.env.run(until=0.33)
    # request 0 runs with 3 blocks (ctx 48); request 1 waits to recompute 20 + 28 = 48 tokens.
    assert [(q.rid, q.ctx, q.gen, q.blocks) for q in e.running] == [(0, 48, 28, 3)]
    assert [(q.rid, q.ctx, q.gen, q.blocks) for q in e.waiting] == [(1, 48, 28, 0)]
    assert e.used_blocks == 3 and e.free_blocks == 3
    s.env.run(until=0.45)
    # request 0 done (its 4 blocks freed); request 1 re-admitted with ceil(49 / 16) = 4 blocks.
    assert [(q.rid, q.blocks) for q in e.running] == [(1, 4)] and e.used_blocks == 4


@pytest.mark.parametrize("kv_mib", [24, 32])
def test_decode_grows_one_block_per_block_size_tokens(kv_mib):
    # One sequence, prompt 15, 40 tokens out; prefill 0.01 + 0.015 = 0.025 s, ctx 16, 1 block.
    # After n decode steps it holds ceil((16 + n) / 16) blocks.
    c = cost(prefill_base_s=0.01, prefill_per_token_s=0.001)
    req = sim(workload([0.0], [15], [40]), kv_cluster(model(), kv_mib), c=c).run().requests_table()
    assert req.first_token_s[0] == pytest.approx(0.025, abs=US)
    if kv_mib == 32:
        # 4 blocks = 64 tokens >= 15 + 40: all 39 steps in one run, done at 0.025 + 0.39.
        assert (req.status[0], req.preemptions[0]) == ("completed", 0)
        assert req.finish_s[0] == pytest.approx(0.415, abs=US)
    else:
        # 3 blocks = 48 tokens: 32 steps fit (ctx 48); step 33 needs a 4th block, so at
        # 0.025 + 0.32 the sequence is preempted, and recomputing 48 tokens needs ceil(49/16) = 4
        # blocks, more than the engine has: dropped as too big for the KV cache.
        assert (req.status[0], req.drop_reason[0], req.preemptions[0]) == ("dropped", "exceeds_kv_capacity", 1)
        assert req.finish_s[0] == pytest.approx(0.345, abs=US)


def test_an_arrival_waits_for_the_blocks_the_running_sequence_grew_into():
    # 6 blocks. Request 0 (prompt 20, 40 out): prefill 0.01 + 0.020 -> first token 0.03, ctx 21,
    # 2 blocks; its run of 39 steps would end at 0.42. Request 1 (prompt 48, needs ceil(49/16) = 4
    # blocks) arrives at 0.205: 4 blocks look free, so the run is cut at the next step boundary,
    # 0.03 + 18 x 0.01 = 0.21. There request 0 has ctx 21 + 18 = 39 and holds ceil(39/16) = 3 blocks,
    # so only 3 are free: request 1 waits until request 0 finishes at 0.21 + 21 x 0.01 = 0.42, then
    # prefills 48 tokens (0.058 s) -> first token 0.478, and 4 more steps -> 0.518.
    c = cost(prefill_base_s=0.01, prefill_per_token_s=0.001)
    req = sim(workload([0.0, 0.205], [20, 48], [40, 5]), kv_cluster(model(), 48), c=c).run().requests_table()
    assert req.first_token_s.tolist() == pytest.approx([0.03, 0.478], abs=US)
    assert req.finish_s.tolist() == pytest.approx([0.42, 0.518], abs=US)
    assert req.preemptions.tolist() == [0, 0]
