"""MuxServe's estimator (policies/muxserve/estimator.py) and mesh placer (policies/muxserve/mesh.py),
formula by formula, by hand, through public names only: argument bounds and their errors, the by-size
tables, the LLM list (rates, KV per token, size, order), step times and the arguments the MPS table is
asked with, batch limits, "meets the rate", the batch search, memory feasibility, a mesh's KV cache and
throughput (as MuxServe's ``estimate_mesh_throughput``), the overload rule, the greedy choice and the
choice of a split, and the engines' details. Written for the mutants that survived
tests/policies/test_muxserve_mesh.py (docs/testing.md); its helpers build the snapshots. Step times
come from hand-made cost models (the estimator's ``costs``); the greedy tests replace a mesh's
throughput estimate (a public method) by a stated rule.
"""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from tests.policies.test_muxserve_mesh import POOL, FlatCosts, NoSlowdown, R, mv, placer, snapshot
from warmsim.policies.muxserve.estimator import LLM, SPLITS, Mesh, MeshEstimator, by_size, llm_list
from warmsim.policies.muxserve.mesh import MuxServeMeshPlacer, engines
from warmsim.policies.types import GPUView, ModelView, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.models import CHUNK_BYTES as CHUNK
from warmsim.sim.models import align_up

GIB = 1 << 30
MIB = 1 << 20


def llm(name="x", rate=1.0, weight=0, kvpt=1, params_b=7.0, prefill_pct=80.0, sched_s=0.0):
    return LLM(name, rate, weight, kvpt, params_b, prefill_pct, sched_s)


def est(**kw) -> MeshEstimator:
    """The estimator of ``placer(**kw)`` (hand-made costs, no slowdown unless told)."""
    return placer(**kw).estimator()


# ---- settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,msg", [
    (dict(max_gpus=0), r"^MuxServeMeshPlacer.max_gpus: got 0; allowed: an integer in \[1, 8\]"),
    (dict(max_gpus=9), r"^MuxServeMeshPlacer.max_gpus: got 9; allowed: an integer in \[1, 8\]"),
    (dict(avg_prompt_len=0), r"^MuxServeMeshPlacer.avg_prompt_len: got 0; allowed: an integer in \[1, 10000000\]"),
    (dict(avg_output_len=0), r"^MuxServeMeshPlacer.avg_output_len: got 0; allowed: an integer in \[1, 10000000\]"),
    (dict(decode_mps_levels=()), r"^MuxServeMeshPlacer.decode_mps_levels: got \(\); allowed: a list of numbers in "
                                 r"\(0, 100\]"),
    (dict(decode_mps_levels=(0, 50)), r"^MuxServeMeshPlacer.decode_mps_levels\[0\]: got 0; allowed: a list of numbers"),
    (dict(decode_mps_levels=(101,)), r"^MuxServeMeshPlacer.decode_mps_levels\[0\]: got 101;"),
    (dict(prefill_mps=((8.0, -1.0),)), r"^MuxServeMeshPlacer.prefill_mps: got .*; allowed: a non-empty list of "
                                       r"\[number, number\] pairs, each >= 0"),
    (dict(max_batch=0), r"^MuxServeMeshPlacer.max_batch: got 0; allowed: an integer in \[1, 1000000\]"),
    (dict(reserve_bytes_per_model=-1), r"^MuxServeMeshPlacer.reserve_bytes_per_model: got -1; allowed: a number in \[0, "),
    (dict(overload_threshold_pct=-1), r"^MuxServeMeshPlacer.overload_threshold_pct: got -1; allowed: a number in \[0, 1000\]"),
    (dict(min_kv_tokens=-1), r"^MuxServeMeshPlacer.min_kv_tokens: got -1; allowed: an integer in \[0, 10000000\]"),
])
def test_bad_settings_are_one_clear_error(kw, msg):
    with pytest.raises(UserError, match=msg):
        MuxServeMeshPlacer(**kw)


def test_the_smallest_valid_settings_are_accepted():
    p = MuxServeMeshPlacer(max_gpus=1, avg_prompt_len=1, avg_output_len=1, decode_mps_levels=(1, 100),
                           max_batch=1, reserve_bytes_per_model=0, overload_threshold_pct=0, min_kv_tokens=0)
    assert p.max_batch == 1 and p.decode_mps_levels == (1, 100)


def test_plan_needs_costs_and_sharing_and_a_known_node_size():
    s = snapshot([mv("a", "llama-2-7b")])
    for p in (MuxServeMeshPlacer(costs=FlatCosts()), MuxServeMeshPlacer(sharing=NoSlowdown())):
        with pytest.raises(UserError, match=r"^muxserve: the mesh placer needs the run's costs and MPS table "
                                            r"\(built by the builder\)$"):
            p.plan(s, {"a": 1.0})
        with pytest.raises(UserError, match=r"^muxserve: the mesh placer needs the run's costs"):
            p.estimator()
    with pytest.raises(UserError, match=r"MuxServe cuts a node of 1, 2, 4, 6 or 8 GPUs into meshes; this one "
                                        r"offers 3 \(cluster.gpus_per_node, system.initial.max_gpus\)"):
        placer().plan(snapshot([mv("a", "llama-2-7b")], gpn=3), {"a": 1.0})


def test_no_split_error_names_the_models_and_the_reserve():
    # Two 13B models (26 GB each) on one 72 GiB GPU with 30 GB reserved per model: each fits alone
    # (26 + 30 < 77.3 GB) but no split puts them both anywhere. Models in placement order (equal
    # rate and size: by name, descending).
    ms = [mv("a", "llama-2-13b"), mv("b", "llama-2-13b")]
    with pytest.raises(UserError, match=r"no split of 1 GPUs into meshes holds every model \(b, a\) with 30\.0 GB "
                                        r"reserved per model and KV for 2048 tokens"):
        placer(reserve_bytes_per_model=30_000_000_000).plan(snapshot(ms), {"a": 1.0, "b": 1.0})


# ---- tables and the LLM list ------------------------------------------------------------------------

def test_by_size_takes_the_first_bound_at_or_above_and_the_last_row_past_them():
    table = ((8.0, 80.0), (14.0, 90.0), (30.0, 95.0))
    assert [by_size(table, p) for p in (7.0, 8.0, 8.5, 14.0, 30.0)] == [80.0, 80.0, 90.0, 90.0, 95.0]
    assert by_size(table, 40.0) == 95.0


def test_llm_rates_kv_and_size():
    a = ModelView("a", 16_000_000_016, 1, 16_000_000_016, 100)  # 8.000000008 B params: over the 8 B row
    b = ModelView("b", 14_000_000_000, 1, 14_000_000_000, 100)  # 7 B
    p = placer()
    s = snapshot([a, b])
    tables = (p.prefill_mps, p.sched_overhead_s)
    llms = {x.name: x for x in llm_list(s.models, p.planned_rates(["a", "b"], {"a": 0.5}), {"a": 512}, *tables)}
    assert llms["b"].rate == 0.0 and llms["a"].rate == 0.5  # no expected rate: 0
    assert llms["a"].kvpt == 512 and llms["b"].kvpt == 100  # the mapping first, else the model's
    assert llms["a"].params_b == pytest.approx(8.000000008) and llms["a"].prefill_pct == 90.0
    assert llms["b"].prefill_pct == 80.0
    assert llm_list(s.models, {"a": 0.0, "b": 0.0}, {}, *tables)[0].rate == 0.0
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(UserError, match=r"muxserve: expected rate of a must be a finite number >= 0, got"):
            p.planned_rates(["a", "b"], {"a": bad})
        with pytest.raises(UserError, match=r"muxserve: expected rate of a must be a finite number >= 0, got"):
            p.plan(s, {"a": bad})
    assert llm_list(s.models, {"a": 0.0, "b": 0.0}, {"a": 1, "b": 1}, *tables)[0].kvpt == 1
    with pytest.raises(UserError, match=r"^muxserve: KV bytes per token of model 'a' unknown$"):
        llm_list(s.models, {"a": 0.0, "b": 0.0}, {"a": 0}, *tables)
    # the placer plans with its own mapping
    with pytest.raises(UserError, match=r"^muxserve: KV bytes per token of model 'a' unknown$"):
        placer(kv_bytes_per_token={"a": 0}).plan(s, {})


def test_llms_go_by_rate_times_size_descending():
    # a: rate 10 at 14 B (scale 2): 20; b: rate 12 at 7 B (scale 1): 12; c: rate 1 at 7 B: 1.
    ms = [ModelView("a", 28_000_000_000, 1, 28_000_000_000, 1), ModelView("b", 14_000_000_000, 1, 14_000_000_000, 1),
          ModelView("c", 14_000_000_000, 1, 14_000_000_000, 1)]
    p = placer()
    rates = {"a": 10.0, "b": 12.0, "c": 1.0}
    got = [x.name for x in llm_list(snapshot(ms).models, rates, {}, p.prefill_mps, p.sched_overhead_s)]
    assert got == ["a", "b", "c"]


# ---- step times, batches, rates -------------------------------------------------------------------------

class RecCosts:
    def __init__(self):
        self.calls = []

    def decode_s(self, model, tp, batch, ctx):
        self.calls.append(("decode", model, tp, batch, ctx))
        return 0.01 + 1e-6 * ctx

    def prefill_s(self, model, tp, tokens, seqs):
        self.calls.append(("prefill", model, tp, tokens, seqs))
        return 1e-4 * tokens


class RecSharing:
    def __init__(self):
        self.calls = []

    def factor(self, phase, share, batch, busy_neighbours=0, *, tokens=None):
        self.calls.append((phase, share, batch, busy_neighbours, tokens))
        return 2.0 if phase == "decode" else 1.5


def test_step_times_follow_get_latency():
    # bs 4, prompt 161, output 337: context int(4 x (161 + 168.5)) = 1318 tokens.
    # decode (0.01 + 1e-6 x 1318) x 2 (decode factor at 30 %) + 1e-4 x 4 = 0.022636 + 0.0004 = 0.023036
    # prefill 1e-4 x 644 x 1.5 (prefill factor at 80 %, 644 tokens) = 0.0966
    c, sh = RecCosts(), RecSharing()
    p = MuxServeMeshPlacer(costs=c, sharing=sh).estimator()
    t_dec, t_pre = p.step_times(llm(sched_s=1e-4), 2, 30, 4)
    assert (t_dec, t_pre) == (pytest.approx(0.023036), pytest.approx(0.0966))
    assert c.calls == [("decode", "x", 2, 4, 1318), ("prefill", "x", 2, 644, 4)]
    assert sh.calls == [("decode", 0.3, 4, 0, None), ("prefill", 0.8, 4, 0, 644)]
    sh.calls.clear()
    p.step_times(llm(prefill_pct=120.0), 1, 50, 1)  # a prefill percentage over 100 counts as 100
    assert sh.calls[1] == ("prefill", 1.0, 1, 0, 161)
    # throughput bs / (t_decode x 337 + t_prefill + extra)
    assert p.throughput(llm(sched_s=1e-4), 2, 30, 4, prefill_extra=0.5) == pytest.approx(4 / (0.023036 * 337 + 0.0966 + 0.5))


def test_batch_limit_is_the_kv_cache_over_a_mean_sequence_within_1_and_max_batch():
    p = est()  # a mean sequence is 161 + 337 = 498 tokens
    x = llm(kvpt=1000)
    assert p.max_batch_for_cache(x, 1_500_000) == 3  # 1.5 MB / 498 kB
    assert p.max_batch_for_cache(x, 400_000) == 1 and p.max_batch_for_cache(x, 10**12) == 256


def test_meeting_the_rate_allows_half_a_request_or_a_tenth():
    p = est()
    assert p.meets_rate(10.0, 10.4) and not p.meets_rate(10.0, 10.5)  # + min(0.5, 1.0)
    assert p.meets_rate(2.0, 2.1) and not p.meets_rate(2.0, 2.2)  # + min(0.5, 0.2)


class PlateauCosts:
    """Decode 0.5 s a step up to batch 3, then bs / 6 s; no prefill. With one output token the
    throughput is bs / t_decode = 2 x min(bs, 3): it stops growing at batch 3."""

    def decode_s(self, model, tp, batch, ctx_tokens):
        return 0.5 if batch <= 3 else batch / 6

    def prefill_s(self, model, tp, tokens, seqs):
        return 0.0


def test_batch_search_finds_the_smallest_batch_meeting_the_rate():
    p = est(costs=PlateauCosts(), avg_prompt_len=1, avg_output_len=1)
    assert [p.throughput(llm(), 1, 50, b) for b in range(1, 6)] == [2.0, 4.0, 6.0, 6.0, 6.0]
    cache = 5 * 2  # 5 sequences of 2 tokens at 1 byte per token
    assert p.estimate_throughput(llm(rate=6.0), 1, 50, cache) == (True, 6.0, 3)   # 2 x 3 = 6 meets 6 exactly
    assert p.estimate_throughput(llm(rate=2.0), 1, 50, cache) == (True, 2.0, 1)
    assert p.estimate_throughput(llm(rate=5.0), 1, 50, cache) == (True, 5.0, 3)
    assert p.estimate_throughput(llm(rate=7.0), 1, 50, cache) == (False, 6.0, 5)  # never met: the KV-limited batch


# ---- memory --------------------------------------------------------------------------------------------

def test_fits_counts_shards_reserves_and_minimum_kv_per_gpu():
    # TP2: weight 4 GiB + 1 -> shard 2 GiB + 2 MiB (rounded up to 2 MiB); reserve 1 GiB; min KV 2048
    # tokens x ceil((2 MiB + 2) / 2) = 2048 x (1 MiB + 1) -> 2 GiB + 2 MiB. Per GPU: 5 GiB + 4 MiB.
    p = est(reserve_bytes_per_model=GIB)
    w, k = 4 * GIB + 1, 2 * MIB + 2
    need = 5 * GIB + 4 * MIB
    assert p.fits([w], [k], 2, need) and not p.fits([w], [k], 2, need - 1)
    # One KV token of ceil((4 MiB + 1) / 2) = 2 MiB + 1 bytes per GPU -> 4 MiB; nothing else.
    q = est(reserve_bytes_per_model=0, min_kv_tokens=1)
    assert q.fits([], [4 * MIB + 1], 2, 4 * MIB) and not q.fits([], [4 * MIB + 1], 2, 4 * MIB - 1)
    # Two models: both reserves count.
    assert p.fits([0, 0], [0, 0], 1, 2 * GIB) and not p.fits([0, 0], [0, 0], 1, 2 * GIB - 1)


def test_mesh_cache_is_the_mesh_memory_left_after_weights_and_reserves():
    p = est(reserve_bytes_per_model=1000)
    m = Mesh(2)
    # 2 GPUs x 10,000 - (3000 + 1000) - 2 x 2 x 1000 = 12,000
    assert p.kv_cache_size(m, [llm(weight=3000), llm(weight=1000)], 10_000) == 12_000
    assert p.kv_cache_size(m, [llm(weight=30_000)], 10_000) == 0.0


def test_can_place_checks_memory_then_the_overload_threshold():
    p = est(reserve_bytes_per_model=0, min_kv_tokens=0, overload_threshold_pct=20.0)
    m = Mesh(1, [(llm("a"), 50)])
    new = llm("b")
    assert p.can_place(m, new, 50, 10)       # 50 left >= 50
    assert p.can_place(m, new, 70, 10)       # 50 + 20 >= 70
    assert not p.can_place(m, new, 71, 10)   # 71 > 70
    assert not p.can_place(Mesh(1, [(llm("a", weight=8), 50)]), llm("b", weight=3), 10, 10)  # 11 B > 10


# ---- a mesh's throughput (estimate_mesh_throughput) -----------------------------------------------------

class LinearCosts:
    """Decode 1 s a step, prefill ``coef[model] x bs`` s (a batch of ``bs`` prompts)."""

    coef = {"x": 0.5, "y": 0.5, "z": 0.0, "w": 0.25}

    def decode_s(self, model, tp, batch, ctx_tokens):
        return 1.0

    def prefill_s(self, model, tp, tokens, seqs):
        return self.coef[model] * seqs


def linear(avg_output_len=1):
    """Step times (1, coef x bs) with no slowdown or overhead; prompt 1 token, output 1 unless told."""
    return est(costs=LinearCosts(), avg_prompt_len=1, avg_output_len=avg_output_len, reserve_bytes_per_model=0,
               min_kv_tokens=0)


def test_linear_step_times():
    assert linear().step_times(llm("x"), 1, 50, 3) == (1.0, 1.5)
    assert linear().step_times(llm("z"), 1, 50, 3) == (1.0, 0.0)


def test_an_empty_mesh_has_no_throughput():
    assert linear().mesh_throughput(Mesh(1), 30) == 0.0


def test_mesh_throughput_splits_kv_by_rate_and_weighs_throughputs_by_rate():
    # x (rate 1) and y (rate 2), 1 byte per token, 30 bytes: KV split 10 / 20 -> at most 5 / 10
    # sequences of 2 tokens. Alone, x meets 1/s at batch 2 (2 / (1 + 1) = 1); y never meets 2/s
    # (bs / (1 + bs/2) < 2): batch 10. Together the prefills add up: 1 + 5 = 6 s:
    #   x 2 / (1 + 6) = 2/7, y 10 / 7; rate-weighted mean (2/7 + 20/7) / 3 = 22/21.
    # x lags (2/7 < 1) and grows to 3: (3/7.5 + 2 x 10/7.5) / 3 = 23/22.5 < 22/21, then 4: 1.0; then
    # both are at their limits. Best: 22/21.
    p = linear()
    m = Mesh(1, [(llm("x", 1.0), 50), (llm("y", 2.0), 50)])
    assert p.mesh_throughput(m, 30) == pytest.approx(22 / 21)


def test_mesh_throughput_grows_the_lagging_batch_one_step_at_a_time():
    # z (rate 1, no prefill cost) next to y (rate 2): z alone meets 1/s at batch 1; y at its limit 10.
    # Prefill 5 s a round: z's throughput b / 6 grows with its batch: b = 1, 2, 3, 4 give
    # (b/6 + 2 x 10/6) / 3 = (b + 20) / 18; at b = 5 both are at their limits and the search ends
    # (that batch is not evaluated, as in MuxServe). Best: 24/18.
    p = linear()
    m = Mesh(1, [(llm("z", 1.0), 50), (llm("y", 2.0), 50)])
    assert p.mesh_throughput(m, 30) == pytest.approx(24 / 18)


def test_of_two_lagging_models_the_one_furthest_below_its_rate_grows():
    # w (prefill 0.25 s per sequence, rate 1.25) and y (0.5 s, rate 1), 14 bytes: KV split 14 x 1.25 /
    # 2.25 = 7.8 and 6.2 bytes -> at most 3 sequences each. Alone, w meets 1.25/s at batch 2
    # (2 / 1.5 = 1.33; batch 1: 0.8), y meets 1/s at batch 2 (2 / 2). Together the round is
    # 1 + 0.5 + 1 = 2.5 s: both at 0.8/s (mean 0.8), both lagging; throughput / rate is 0.64 for w and
    # 0.8 for y, so w grows to 3: round 2.75 s, w 12/11, y 8/11, mean (1.25 x 12/11 + 8/11) / 2.25 =
    # 92/99. Then y grows to its limit and the loop ends. (Growing y first, the model whose
    # throughput x rate is lower, would give (1.25 x 2/3 + 1) / 2.25 = 22/27 instead.)
    p = linear()
    m = Mesh(1, [(llm("w", 1.25), 50), (llm("y", 1.0), 50)])
    assert p.mesh_throughput(m, 14) == pytest.approx(92 / 99)


def test_a_mesh_whose_models_all_start_at_their_kv_limit_scores_zero_as_in_muxserve():
    # y alone on 20 bytes: batch limit 10, never meets 2/s, so it starts at 10: MuxServe's loop ends
    # before evaluating anything and the mesh throughput stays 0.
    assert linear().mesh_throughput(Mesh(1, [(llm("y", 2.0), 50)]), 20) == 0.0


def test_mesh_throughput_with_no_rate_splits_kv_evenly():
    # Both rates 0: KV split 15 / 15 -> limit 7 each; both meet 0 at batch 1; mean over zero rate: 0.
    p = linear()
    m = Mesh(1, [(llm("x", 0.0), 50), (llm("y", 0.0), 50)])
    assert p.mesh_throughput(m, 30) == 0.0


# ---- candidates and engines ------------------------------------------------------------------------------

def test_candidates_try_mesh_sizes_1_2_4_8_and_keep_the_first_best_percentage():
    # FlatCosts: decode 0.001 / tp, so throughput bs / (0.337 / tp) <= 256 / 0.337 x tp: the rate
    # 1e9 is never met; every percentage gives the same throughput, so the first tried (10 %) stays,
    # marked not satisfied; KV is plenty, so the batch is max_batch (256).
    p = est(decode_mps_levels=(20, 10), reserve_bytes_per_model=0)
    x = llm(rate=1e9, weight=GIB, kvpt=1000)
    p.set_candidates(x, 20 * GIB, 8)
    assert sorted(x.cand) == [1, 2, 4, 8] and x.min_mesh == 1
    assert all(c[0] == 10 and c[1] == 256 and c[3] is False for c in x.cand.values())
    assert x.cand[2][2] == pytest.approx(256 / 0.337 * 2)
    y = llm(rate=1.0, weight=GIB, kvpt=1000)
    p.set_candidates(y, 20 * GIB, 4)
    assert sorted(y.cand) == [1, 2, 4] and y.cand[1] == (10, 1, 1.0, True)  # met at 10 %, batch 1


class InverseShare:
    """A step at compute share s takes 1/s as long: a higher percentage is always faster."""

    def factor(self, phase, share, batch, busy_neighbours=0, *, tokens=None):
        return 1.0 / share


def test_candidates_skip_percentages_over_90_and_the_prefill_one():
    # Prefill 80 %: of 80, 90, 91, 95 only 90 may be tried (the rate is never met).
    p = est(sharing=InverseShare(), decode_mps_levels=(95, 91, 90, 80), reserve_bytes_per_model=0)
    x = llm(rate=1e9, weight=GIB, kvpt=1000, prefill_pct=80.0)
    p.set_candidates(x, 20 * GIB, 1)
    assert x.cand[1][0] == 90


def test_candidate_cache_is_the_mesh_memory_after_weight_and_reserves():
    # 1 GPU of 10 GiB, weight 2 GiB, reserve 1 GiB: 7 GiB of KV; 1 MiB per token x 498 tokens per
    # sequence -> 14 sequences (7168 / 498); the rate is never met, so the batch is that limit.
    p = est(reserve_bytes_per_model=GIB, min_kv_tokens=0)
    x = llm(rate=1e9, weight=2 * GIB, kvpt=MIB)
    p.set_candidates(x, 10 * GIB, 1)
    assert x.cand[1][1] == 14


def test_no_candidate_error_gives_the_reserve_in_gb():
    p = est()
    with pytest.raises(UserError, match=r"model 'x' fits no mesh of 1, 2, 4 or 8 GPUs within the 1 GPU\(s\) "
                                        r"MuxServe may use \(weights \+ 7\.6 GB reserve \+ KV for 2048 tokens"):
        p.set_candidates(llm(weight=80 * GIB), 72 * GIB, 1)
    # GB are 1e9 bytes, one decimal: 7.65e9 bytes print as 7.7 GB.
    with pytest.raises(UserError, match=r"\(weights \+ 7\.7 GB reserve"):
        est(reserve_bytes_per_model=7_650_000_000).set_candidates(llm(weight=80 * GIB), 72 * GIB, 1)
    ms = [mv("a", "llama-2-13b"), mv("b", "llama-2-13b")]  # as in the no-split case above
    with pytest.raises(UserError, match=r"with 30\.1 GB reserved per model"):
        placer(reserve_bytes_per_model=30_050_000_000).plan(snapshot(ms), {"a": 1.0, "b": 1.0})


def test_engine_details_and_source():
    (act, d), = placer().plan(snapshot([mv("a", "llama-2-7b")]), {"a": 10.0})
    assert act.source == "prewarmed" and act.tp == 1 and act.gpus == (0,)
    assert d == {"mesh": 1, "decode_pct": d["decode_pct"], "prefill_pct": 80.0, "share": 1.0,
                 "max_num_seqs": 4, "rate": 10.0, "satisfied": True}
    assert d["decode_pct"] == 10


def test_mesh_throughput_with_rates_below_one_request_per_second():
    # x 0.25/s and y 0.5/s, 30 bytes: KV by rate 10 / 20 (limits 5 / 10); both meet their rates at
    # batch 1: prefill 0.5 + 0.5, throughputs 1 / 2 each; rate-weighted (0.5 x 0.25 + 0.5 x 0.5) / 0.75.
    m = Mesh(1, [(llm("x", 0.25), 50), (llm("y", 0.5), 50)])
    assert linear().mesh_throughput(m, 30) == pytest.approx(0.5)


def test_mesh_throughput_multiplies_the_decode_step_by_the_output_length():
    # Output 2 tokens: a sequence is 3 tokens (limit 30 // 3 = 10); x meets 1/s at batch 4:
    # 4 / (1 x 2 + 0.5 x 4) = 1.
    p = linear(avg_output_len=2)
    assert p.mesh_throughput(Mesh(1, [(llm("x", 1.0), 50)]), 30) == pytest.approx(1.0)


def test_engines_go_largest_mesh_first_with_kv_split_by_block_size():
    # Pool 10 chunks (2 MiB) per GPU, no reserve. Mesh of 2 GPUs: y (6 chunks + 1 byte: shard
    # ceil(/2) = 3 chunks + 1 -> 4 chunks) and z (2 chunks: shard 1): 10 - 5 = 5 chunks left per GPU,
    # split by KV bytes per token per GPU, ceil(3 / 2) = 2 and ceil(2 / 2) = 1: y 5 x 2/3 -> 3 chunks,
    # z 5 x 1/3 -> 1 chunk (rounded down to chunks). Mesh of 1 GPU: x (1 chunk), 9 chunks of KV.
    # The 2-GPU mesh takes GPUs 0-1, the 1-GPU mesh GPU 2. Shares: max(prefill 80, decode) over the
    # mesh's sum: x 80/80; y and z 80/160.
    C = CHUNK
    x = llm("x", 1.0, weight=C, kvpt=1)
    y = llm("y", 2.0, weight=6 * C + 1, kvpt=3)
    z = llm("z", 3.0, weight=2 * C, kvpt=2)
    x.cand, y.cand, z.cand = {1: (30, 4, 1.0, True)}, {2: (30, 8, 2.0, True)}, {2: (40, 6, 2.5, False)}
    out = engines([Mesh(1, [(x, 30)]), Mesh(2, [(y, 30), (z, 40)])], [0, 1, 2], 10 * C, 0)
    got = [(a.model, a.gpus, a.tp, a.kv_bytes_per_gpu, a.compute_share, a.max_num_seqs, a.source) for a, _ in out]
    assert got == [("y", (0, 1), 2, 3 * C, 0.5, 8, "prewarmed"), ("z", (0, 1), 2, C, 0.5, 6, "prewarmed"),
                   ("x", (2,), 1, 9 * C, 1.0, 4, "prewarmed")]
    assert out[1][1] == {"mesh": 2, "decode_pct": 40, "prefill_pct": 80.0, "share": 0.5, "max_num_seqs": 6,
                         "rate": 3.0, "satisfied": False}


# ---- the greedy mesh choice (smart_placement) ----------------------------------------------------------

class MaxRate(MeshEstimator):
    """The estimator with a stated mesh throughput: the mesh's GPU count times its largest rate (0 when
    empty), so that the greedy choice can be followed by hand."""

    def mesh_throughput(self, mesh, pool):
        return mesh.ngpus * max((x.rate for x, _ in mesh.models), default=0.0)


def greedy(rule=MaxRate, **kw):
    """``rule`` (an estimator class) with ``est(**kw)``'s settings, no reserve and no minimum KV."""
    kw = {"reserve_bytes_per_model": 0, "min_kv_tokens": 0, **kw}
    base = est(**kw)
    return rule(**{f.name: getattr(base, f.name) for f in fields(base)})


def with_cand(x, sizes, batch=1):
    x.cand = {g: (10, batch, 0.0, True) for g in sizes}
    x.min_mesh = min(sizes)
    return x


def names(mesh):
    return [x.name for x, _ in mesh.models]


def test_greedy_goes_to_the_largest_rise_ties_to_the_first_mesh_by_tag_then_free_memory():
    # Two 1-GPU meshes of 1 GiB. z (rate 0, 10 bytes) rises both by 0: the first, m1. Now m1 has less
    # free memory: c (rate 1) rises both by 1 and goes to m2 (tag 0 = 0, more free memory); m2's tag
    # -1. d (rate 2): m1 rises by 2, m2 by 1: m1 (tag -2). e (rate 0.5) rises both by 0: the first by
    # tag, m2 (-1 > -2). Tracked throughputs: m1 0 + 2, m2 1 + 0.
    m1, m2 = Mesh(1), Mesh(1)
    llms = [with_cand(llm("z", 0.0, weight=10), [1], batch=200), with_cand(llm("c", 1.0), [1], batch=200),
            with_cand(llm("d", 2.0), [1], batch=200), with_cand(llm("e", 0.5), [1], batch=200)]
    out = greedy().smart_placement(llms, [m1, m2], GIB)
    assert (names(m1), names(m2)) == (["z", "d"], ["c", "e"])
    assert (m1.tpt, m2.tpt) == (2.0, 1.0) and (m1.tag, m2.tag) == (-2.0, -1.5)
    assert out == [m2, m1]  # by tag, descending


def test_greedy_ties_go_to_the_smaller_mesh_and_meshes_without_a_candidate_are_skipped():
    # Meshes of 2 and 1 GPUs. z (rate 0) rises both by 0: the smaller. c (rate 1) rises the 2-GPU mesh
    # by 2, the other by 1: the 2-GPU one, tag -1/2. y (rate 0.5, 14 B: rate scale 2) has a candidate
    # for 2 GPUs only: rises it by 2 x 1 - 2 = 0; its tag -0.5 - 0.5 x 2 / 2 = -1.
    big, small = Mesh(2), Mesh(1)
    llms = [with_cand(llm("z", 0.0), [1, 2]), with_cand(llm("c", 1.0), [1, 2]),
            with_cand(llm("y", 0.5, params_b=14.0), [2])]
    greedy().smart_placement(llms, [big, small], GIB)
    assert (names(big), names(small)) == (["c", "y"], ["z"])
    assert big.tag == -1.0 and big.tpt == 2.0


def test_greedy_gives_up_when_a_model_fits_no_mesh():
    # The decode percentage is checked (10 % fits); a model without a candidate for any mesh size fails.
    assert greedy().smart_placement([with_cand(llm("a", 1.0), [4])], [Mesh(1), Mesh(2)], GIB) is None


def test_a_plan_with_no_expected_load_still_places_every_model():
    # Every rate 0 (no load expected): both splits of 2 GPUs, (2) and (1, 1), score 0; a tie goes to
    # the first in MuxServe's order: one mesh of 2 GPUs holding both.
    ms = [mv("a", "llama-2-7b"), mv("b", "llama-2-7b")]
    got = placer().plan(snapshot(ms, gpn=2), {})
    assert [(a.model, a.gpus) for a, _ in got] == [("a", (0, 1)), ("b", (0, 1))]


# ---- the choice of a split (PlacementOptimizer.optimize) -------------------------------------------------

class PerGpu(MeshEstimator):
    """The estimator with a stated mesh throughput: the mesh's largest rate over its GPU count, so that
    smaller meshes score higher."""

    def mesh_throughput(self, mesh, pool):
        return max((x.rate for x, _ in mesh.models), default=0.0) / mesh.ngpus


def placed(meshes):
    return [(m.ngpus, names(m)) for m in meshes]


def test_the_split_with_the_highest_score_wins_and_splits_with_more_meshes_than_models_are_skipped():
    # One model (rate 1) on 2 GPUs: (2,) scores 1/2 x 1 / 1; (1, 1) would score 1 but has two meshes
    # for one model, so it is never tried.
    one = [with_cand(llm("a", 1.0), [1, 2])]
    assert placed(greedy(PerGpu).optimize(one, SPLITS[2], GIB)) == [(2, ["a"])]
    # Two models of rate 1: (2,) holds both (a rises it by 1/2, b by 0): score 1/2 x 2 / 2 = 1/2.
    # (1, 1): a to the first mesh (a tie), b to the other (rise 1 against 0): score (1 + 1) / 2 = 1.
    two = [with_cand(llm("a", 1.0), [1, 2]), with_cand(llm("b", 1.0), [1, 2])]
    assert sorted(placed(greedy(PerGpu).optimize(two, SPLITS[2], GIB))) == [(1, ["a"]), (1, ["b"])]


def test_splits_that_cannot_hold_every_model_or_have_too_many_meshes_are_passed_over_not_the_end():
    # Four models that each take a whole 2-GPU mesh (decode 90 %: a second one would leave 10 + 20 <
    # 90) and have no other candidate. On 8 GPUs, (8), (4, 4), (4, 2, 2) and (4, 2, 1, 1) cannot hold
    # them, (4, 1, 1, 1, 1) has five meshes for four models; (2, 2, 2, 2) is the first that works.
    llms = [llm(n, 1.0) for n in "abcd"]
    for x in llms:
        x.cand, x.min_mesh = {2: (90, 1, 0.0, True)}, 2
    got = greedy().optimize(llms, SPLITS[8], GIB)
    assert sorted(placed(got)) == [(2, ["a"]), (2, ["b"]), (2, ["c"]), (2, ["d"])]
    assert greedy().optimize(llms, SPLITS[8][:5], GIB) is None  # none of the first five holds them


def test_the_trial_mesh_holds_the_model_at_its_candidate_decode_percentage():
    # A stated mesh throughput: the sum of its models' decode percentages. a's candidate for one GPU
    # is 30 % at batch 7: the mesh rises by 30 (not 7) and a joins at 30 %.
    class PctSum(MeshEstimator):
        def mesh_throughput(self, mesh, pool):
            return float(sum(p for _, p in mesh.models))

    a = llm("a", 1.0)
    a.cand = {1: (30, 7, 0.0, True)}
    m = Mesh(1)
    greedy(PctSum).smart_placement([a], [m], GIB)
    assert m.models == [(a, 30)] and m.tpt == 30.0


def test_every_gpu_of_the_mesh_offers_the_least_free_memory_among_them():
    # A 7B alone on 2 GPUs (the split (1, 1) has more meshes than models): one mesh at TP 2. GPU 1 has
    # 2 GiB in use, so each GPU offers POOL - 2 GiB: KV = that less the weight shard and the reserve.
    m = mv("a", "llama-2-7b")
    gpus = (GPUView(0, 0, POOL, 0), GPUView(1, 0, POOL, 2 * GIB))
    (act, _), = placer().plan(Snapshot(0.0, 2, gpus, {"a": m}), {"a": 1.0})
    left = POOL - 2 * GIB - align_up(-(-m.weight_bytes // 2)) - R
    assert act.gpus == (0, 1) and act.kv_bytes_per_gpu == left // CHUNK * CHUNK


# ---- the placer's own small promises ------------------------------------------------------------------

def test_place_returns_the_plans_activations_at_the_given_rates():
    snap = snapshot([mv("a", "llama-2-7b"), mv("b", "llama-2-13b")])
    rates = {"a": 2.0, "b": 1.0}
    acts = placer().place(snap, rates)
    assert acts == [a for a, _ in placer().plan(snap, rates)]
    assert [a.max_num_seqs for a in placer().place(snapshot([mv("a", "llama-2-7b")]), {"a": 20.0})] == [7]


def test_recipe_shares_that_add_up_to_zero_leave_the_split_to_the_runs_rates():
    # shares 0 and 0 cannot split 8 req/s: the run's 3 : 1 does (6 and 2)
    p = placer(plan_rps=8.0, rate_shares={"a": 0.0, "b": 0.0})
    assert p.planned_rates(["a", "b"], {"a": 3.0, "b": 1.0}) == {"a": 6.0, "b": 2.0}


def test_a_context_without_recipe_shares_gives_none():
    class Ctx:  # a RunContext-like object that states no shares
        sharing = NoSlowdown()

    ctx = Ctx()
    p = MuxServeMeshPlacer(rate_shares={"a": 1.0}).with_context(ctx)
    assert p.rate_shares is None and p.costs is ctx and p.sharing is ctx.sharing
