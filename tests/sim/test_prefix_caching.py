"""Prefix caching (vLLM 0.6.3's automatic prefix caching) in the engine, by hand.

Harness: tests/sim/prefix_harness.py (tests/sim/test_engine_mutants.py's host). Block size 4 and
prompt-block ids of 4 tokens, so one id names one engine block (letters below: A = id 1, ...). Costs:
prefill ``0.01 + 0.001 x computed tokens`` s, decode steps 0.01 s. An engine block j of a prompt with
ids gets the key ``id x 5 + 4`` (block_key: the id of the trace block holding its last token, times
trace_block + 1, plus the offset of its end in that block).
"""

from __future__ import annotations

import pytest

from tests.sim.prefix_harness import pengine
from warmsim.sim.engine import Engine
from warmsim.sim.engine_features import FeatureEngine
from warmsim.sim.prefix_cache import NEW, REVIVED, SHARED, SHARED_PENDING, PrefixCache, audit, block_key

A, B, C, D, E, X, Y, Z = 1, 2, 3, 4, 5, 6, 7, 8


def key(i: int) -> int:
    return i * 5 + 4


def own(rid: int, j: int) -> int:
    return -1 - ((rid << 24) | j)


def run(*args, **kw):
    h, e = pengine(*args, **kw)
    h.env.run()
    assert getattr(e, "cache", None) is None or audit(e) is None
    return h, e


# ---- keys -----------------------------------------------------------------------------------

def test_engine_blocks_are_named_by_the_trace_block_holding_their_last_token():
    ids = [10, 11, 12]  # Mooncake: 512 tokens an id; prompt 1300 -> ids for [0,512) [512,1024) [1024,1300)
    # Engine blocks of 256: block 0 ends at 256 (inside id 10), block 1 at 512 (end of id 10), block 3 at 1024.
    assert [block_key(ids, 512, 256, 0, 1300, j) for j in range(5)] == [10 * 513 + 256, 10 * 513 + 512,
                                                                          11 * 513 + 256, 11 * 513 + 512,
                                                                          12 * 513 + 256]
    # Block 5 ends at 1536 > 1300: not wholly in the prompt, the request's own key.
    assert block_key(ids, 512, 256, 3, 1300, 5) == own(3, 5)
    # Engine blocks of 1024 span two ids: named by the second (chained ids name everything before).
    assert block_key(ids, 512, 1024, 0, 1300, 0) == 11 * 513 + 512
    # No ids (a source without hash_ids): every block is the request's own.
    assert block_key(None, 1, 256, 7, 1300, 0) == own(7, 0)


def test_the_cache_counts_references_and_keeps_released_blocks_until_evicted():
    c = PrefixCache()
    assert c.acquire(1) == NEW and c.acquire(1) == SHARED_PENDING
    c.mark_computed(1)
    assert c.acquire(1) == SHARED
    assert [c.release(1, 0.0, 4) for _ in range(3)] == [False, False, True]
    assert c.cached == 1 and c.acquire(1) == REVIVED and c.cached == 0
    c.acquire(2)  # never computed: forgotten when released
    assert c.release(2, 1.0, 4) and 2 not in c.blocks and c.cached == 0


# ---- hits -------------------------------------------------------------------------------------

def test_a_hit_skips_the_cached_blocks_of_the_prefill():
    # R0 [A B c] (10 tokens, 1 out) at 0: computes 10 -> 0.02, then its full blocks A, B go to the
    # evictor. R1 [A B d] (11 tokens) at 1: A and B hit (2 blocks, 8 tokens): computes 3 -> 1.013
    # (1.021 without prefix caching).
    h, e = run([10, 11], [1, 1], [0.0, 1.0], [[A, B, C], [A, B, D]])
    assert h.log == [(0.02, "first", 0), (0.02, "done", 0), (1.013, "first", 1), (1.013, "done", 1)]
    assert h.hits == {0: 0, 1: 8}
    h, _ = run([10, 11], [1, 1], [0.0, 1.0], [[A, B, C], [A, B, D]], prefix=False)
    assert h.log[-1] == (1.021, "done", 1) and h.hits == {}


@pytest.mark.parametrize("prompt,ids,hit", [
    (8, [A, B], 4),  # an exact multiple: the last block is never a hit (vLLM recomputes it): 4, not 8
    (4, [A], 0),  # one block, which is the last
    (10, [A, E, C], 4),  # a partial hit: A matches, E does not; the run of hits stops there
    (10, [E, B, C], 0),  # B's key names A B: after E it is another block (chained ids)
])
def test_the_hit_is_the_leading_run_of_cached_blocks_before_the_last(prompt, ids, hit):
    h, _ = run([10, prompt], [1, 1], [0.0, 1.0], [[A, B, C], ids])
    assert h.hits[1] == hit
    assert h.log[-1] == (round(1.0 + 0.01 + 0.001 * (prompt - hit), 9), "done", 1)


def test_two_equal_prompts_in_one_step_share_blocks_but_both_compute_them():
    # R0 = R1 = [C D x] (9 tokens) at 0 in one prefill: 18 tokens computed (the blocks are not
    # computed yet when R1 looks), 0.028; memory: C, D once + one unshared block each = 4, not 6.
    # R2 [C D y] at 1 (a later step): hits 8, computes 1.
    h, e = pengine([9, 9, 9], [3, 3, 1], [0.0, 0.0, 1.0], [[C, D, X], [C, D, X], [C, D, Y]])
    h.env.run(until=0.02)
    assert e.used_blocks == 4 and e.cache.blocks[key(C)][0] == 2
    h.env.run()
    assert h.hits == {0: 0, 1: 0, 2: 8}
    assert [x for x in h.log if x[1] == "first"] == [(0.028, "first", 0), (0.028, "first", 1), (1.011, "first", 2)]


# ---- eviction -----------------------------------------------------------------------------------

def test_eviction_takes_the_oldest_then_the_deepest_block_and_only_when_no_empty_block_is_left():
    # X [X0 X1 X2] (12 tokens, 2 out) and Y [X0 Y1] (8 tokens, 3 out) at 0, 6 blocks: X holds X0 X1
    # X2 + 1, Y holds X0 (shared) Y1 + 1. X ends at 0.04: X1, X2 enter the evictor (0.04), X0 stays
    # (Y holds it). Y ends at 0.05: X0 (depth 4) and Y1 (depth 8) enter at 0.05. Eviction order:
    # X2 (0.04, depth 12), X1 (0.04, 8), Y1 (0.05, 8), X0 (0.05, 4).
    X0, X1, X2, Y1, Q = 11, 12, 13, 14, 20
    h, e = pengine([12, 8, 12, 13], [2, 3, 1, 1], [0.0, 0.0, 1.0, 2.0],
                   [[X0, X1, X2], [X0, Y1], [Q, Q + 1, Q + 2], [X0, X1, X2, Z]], kv_blocks=6)
    h.env.run(until=0.5)
    assert e.cache.evictor_order() == [key(X2), key(X1), key(Y1), key(X0)]
    assert e.used_blocks == 0 and e.cache.cached == 4  # 2 blocks empty: nothing evicted yet
    # Request 2 at 1 (3 new full blocks + 1): 2 from the empty blocks, then X2 and X1 are evicted.
    h.env.run(until=1.5)
    assert e.cache.evicted == 2 and key(X2) not in e.cache.blocks and key(X1) not in e.cache.blocks
    # Request 3 [X0 X1 X2 z] at 2 now hits X0 only: computes 13 - 4 = 9.
    h.env.run()
    assert h.hits[3] == 4 and h.log[-1] == (2.019, "done", 3)
    assert audit(e) is None


def test_a_preemption_frees_blocks_into_the_cache_and_the_recompute_hits_what_is_left():
    # 6 blocks. S0 [P Q] and S1 [U V] (8 tokens, 10 out) at 0: 3 blocks each, prefill 16 -> 0.026.
    # Three decode steps fill their blocks (context 12) -> 0.056; the next needs a block each: S1
    # (the newest) is preempted, its U, V and its own block 2 (tokens 8-11, generated) enter the
    # evictor at 0.056 -- still cached, free for admission. S0 alone: 6 steps (0.116) take 2 fresh
    # blocks, evicting S1's own block (depth 12) and V (8). S0 ends: its blocks enter the evictor at
    # 0.116. S1 comes back with context 12: U hits, V does not (evicted): computes 12 - 4 = 8 tokens
    # (0.018 -> 0.134; 12 without prefix caching), then 5 steps -> 0.184.
    P, Q, U, V = 1, 2, 3, 4
    h, e = run([8, 8], [10, 10], [0.0, 0.0], [[P, Q], [U, V]], kv_blocks=6)
    assert h.log == [(0.026, "first", 0), (0.026, "first", 1), (0.056, "preempt", 1, 3, 3), (0.116, "done", 0),
                     (0.184, "done", 1)]
    assert h.hits == {0: 0, 1: 0}  # the hit of the first prefill (the one that gave the first token)
    assert e.prefill_cached == 4 and e.prefill_computed == 16 + 8
    # Left: P (0.116), then S1's blocks at 0.184, deepest first (S0's own blocks and Q were evicted).
    assert e.cache.evictor_order() == [key(P), own(1, 3), own(1, 2), key(V), key(U)]
    h, _ = run([8, 8], [10, 10], [0.0, 0.0], [[P, Q], [U, V]], kv_blocks=6, prefix=False)
    assert h.log[-1] == (0.188, "done", 1)


def test_a_lost_instance_loses_its_cache():
    # After R1 [A B d] (11 tokens) ends, A, B and its block 2 (tokens 8-11: 3 of prompt + 1
    # generated, the request's own key) are cached.
    h, e = run([10, 11], [1, 1], [0.0, 1.0], [[A, B, C], [A, B, D]])
    assert sorted(e.cache.blocks) == sorted([key(A), key(B), own(1, 2)]) and e.cache.cached == 3
    e.halt()
    assert e.cache.cached == 0 and not e.cache.blocks and e.used_blocks == 0


# ---- KV lending ---------------------------------------------------------------------------------

def test_lending_blocks_evicts_cached_blocks_when_the_empty_ones_run_short():
    h, e = run([10], [1], [0.0], [[A, B, C]], kv_blocks=4)
    assert e.cache.cached == 2 and e.free_blocks == 4  # A, B cached; cached blocks count as free
    e.set_reserved(2)  # 2 empty blocks: nothing to evict
    assert e.cache.cached == 2 and e.cache.evicted == 0
    e.set_reserved(3)  # one more: B (deeper) goes
    assert e.cache.evictor_order() == [key(A)] and audit(e) is None
    e.set_reserved(1)  # a reclaim evicts nothing back
    assert e.cache.cached == 1


@pytest.mark.parametrize("features,cls", [({}, Engine), ({"steps": True}, FeatureEngine),
                                           ({"chunked": True}, FeatureEngine)])
def test_the_plain_engine_runs_unless_a_feature_is_on(features, cls):
    h, e = pengine([5], [3], [0.0], prefix=False, **features)
    assert type(e) is cls


# ---- chunked prefill ------------------------------------------------------------------------------

def test_chunked_prefill_with_prefix_caching_charges_whole_chunks_and_computes_the_uncached_part():
    # Budget 8 tokens a step, blocks of 4. R0 [A B c] (10) at 0: chunks 8 (0.018) and 2 (0.012 ->
    # 0.03). R1 [z] (4 tokens, 100 out) at 0.5: prefill 0.514, then decodes. W [A B n n n] (20) at 1
    # cuts R1's run after step 49 (1.004). Each step: R1's decode (1 token of budget), then W's
    # chunk: 7 left, rounded down to whole blocks -> 4: [0,4) and [4,8) lie in the hit (A, B):
    # 1 token each (0.011); [8,12), [12,16) compute 4 (0.014); [16,20) fits whole (0.014): first
    # token at 1.068. Without prefix caching: chunks 7, 7, 6 -> 1.054.
    ids = [[A, B, C], [Z], [A, B, 21, 22, 23]]
    kw = dict(chunked=True, max_batched_tokens=8, max_num_seqs=4, steps=True)
    h, e = run([10, 4, 20], [1, 100, 1], [0.0, 0.5, 1.0], ids, **kw)
    assert (1.068, "first", 2) in h.log and h.hits[2] == 8
    mixed = [(r[8], r[9]) for r in h.step_rows if r[4] == "mixed"]
    assert mixed == [(4, 1), (4, 1), (4, 4), (4, 4), (4, 4)]  # (tokens charged, tokens computed)
    h, _ = run([10, 4, 20], [1, 100, 1], [0.0, 0.5, 1.0], ids, prefix=False, **kw)
    assert (1.054, "first", 2) in h.log
    assert [(r[8], r[9]) for r in h.step_rows if r[4] == "mixed"] == [(7, 7), (7, 7), (6, 6)]


def test_chunked_prefill_alone_gives_the_first_token_with_the_last_chunk():
    # Budget 8, no decode running: prompt 20 -> chunks 8, 8, 4 (0.018, 0.018, 0.014): first token 0.05.
    h, e = run([20], [2], [0.0], prefix=False, chunked=True, max_batched_tokens=8, max_num_seqs=4)
    assert h.log == [(0.05, "first", 0), (0.06, "done", 0)]


def test_chunked_prefill_needs_a_budget_of_a_token_per_sequence_and_whole_blocks_with_prefix_caching():
    from warmsim.sim.engine import EngineSpec
    from warmsim.sim.errors import UserError
    with pytest.raises(UserError, match="max_num_seqs"):
        EngineSpec(max_num_seqs=256, max_batched_tokens=128, chunked_prefill=True)
    with pytest.raises(UserError, match="multiple of engine.block_size"):
        EngineSpec(block_size=256, max_batched_tokens=1000, chunked_prefill=True, prefix_caching=True)


# ---- random cases (hypothesis) ----------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# A request: arrival, which of 3 prefixes it continues, how many of its 0-5 blocks it shares, its own
# extra tokens, its output. Ids are chained by construction: shared blocks take the prefix's ids.
requests = st.lists(st.tuples(st.floats(0, 2, allow_nan=False), st.integers(0, 2), st.integers(0, 5),
                              st.integers(1, 30), st.integers(1, 40)), min_size=1, max_size=25)


@pytest.mark.parametrize("chunked", [False, True])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reqs=requests, kv=st.integers(12, 60), lent=st.integers(0, 6))
def test_random_cases_keep_the_block_accounts_and_bound_every_hit(chunked, reqs, kv, lent):
    # (in 60 examples about half hit, 60 % evict, 15 % preempt and 10 % drop a request that cannot fit)
    reqs = sorted(reqs)
    prompts, outputs, arrivals, ids = [], [], [], []
    fresh = 1000
    for t, which, shared, extra, out in reqs:
        prompt = 4 * shared + extra
        row = [100 * which + b for b in range(shared)]
        while len(row) < -(-prompt // 4):
            row.append(fresh)
            fresh += 1
        prompts.append(prompt), outputs.append(out), arrivals.append(t), ids.append(row)
    h, e = pengine(prompts, outputs, arrivals, ids, kv_blocks=kv, chunked=chunked, max_batched_tokens=16,
                   max_num_seqs=8, steps=True)
    e.set_reserved(lent)
    while h.env.peek() < float("inf"):
        h.env.step()
        assert audit(e) is None
        if h.env.now > 0.5 and e.reserved:
            e.set_reserved(0)  # the lent blocks come back half a second in
    ended = {x[2] for x in h.log if x[1] in ("done", "drop")}
    assert ended == set(range(len(prompts)))
    preempted = {x[2] for x in h.log if x[1] == "preempt"}
    for rid, hit in h.hits.items():
        assert hit % 4 == 0 and 0 <= hit <= prompts[rid] - 1
        if rid not in preempted:  # (after a preemption its own computed blocks are cached and hit too)
            assert hit <= 4 * sum(1 for i in ids[rid] if i < 1000)  # only shared ids can hit
    for r in h.step_rows:
        assert r[14] + r[15] + r[16] <= r[13]  # used + cached + lent <= blocks
        assert r[9] <= r[8] or r[4] == "decode"  # computed <= charged
