"""The engine (sim/engine.py) on its own, driven through a minimal host, by hand: the cost of a prefill
step and of a run of decode steps with every coefficient and the instance's slowdown, the prefill token
cap, when an arrival cuts a decode run, reclaims of lent KV blocks, block and freed-block accounting,
idle time, the busy flag, and the closed-form helpers checked against brute force. Written for the
mutants of sim/engine.py that the simulation-level tests left alive (docs/testing.md).

The host records every callback; the instance answers ``slowdown`` from fixed factors per phase and
logs each call (a decode run asks once at its start, a prefill step once). Block size 16 unless a
test says otherwise; costs: prefill ``0.01 + 0.001 x prompt tokens`` s, decode steps 0.01 s.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import simpy

from warmsim.sim.cost import DecodeCoeffs
from warmsim.sim.decode_run import steps_before_kv_full, steps_done
from warmsim.sim.engine import EngineSpec, Seq
from warmsim.sim.engine_features import make_engine

US = 1e-9


class Cost:
    """prefill_s = base + per_token x tokens + per_seq x sequences; decode as given. Checks the model."""

    def __init__(self, model, base=0.01, per_token=0.001, per_seq=0.0, decode=DecodeCoeffs(0.01, 0.0, 0.0)):
        self.model, self.base, self.per_token, self.per_seq, self.decode = model, base, per_token, per_seq, decode

    def prefill_s(self, model, tokens, n):
        assert model is self.model
        return self.base + self.per_token * tokens + self.per_seq * n

    def decode_coeffs(self, model):
        assert model is self.model
        return self.decode


class Inst:
    id = 7

    def __init__(self, host, prefill=1.0, decode=1.0):
        self.host, self.factor, self.calls = host, {"prefill": prefill, "decode": decode}, []

    def slowdown(self, phase, batch, tokens=None):
        self.calls.append((round(self.host.env.now, 9), phase, batch, tokens))
        return self.factor[phase]


class Host:
    def __init__(self, prompts, outputs):
        self.env = simpy.Environment()
        self.workload = SimpleNamespace(prompt_tokens=np.asarray(prompts), output_tokens=np.asarray(outputs))
        self.kv_dirty: set[int] = set()
        self.log: list[tuple] = []
        self.reclaims: list[tuple] = []
        self.changes = 0

    def now(self):
        return round(self.env.now, 9)

    def on_first_token(self, rid, t):
        self.log.append((round(t, 9), "first", rid))

    def on_complete(self, rid, t):
        self.log.append((round(t, 9), "done", rid))

    def on_drop(self, rid, reason):
        self.log.append((self.now(), "drop", rid, reason))

    def on_preempt(self, rid):
        e = self.engine
        self.log.append((self.now(), "preempt", rid, e.used_blocks, e.freed))

    def instance_changed(self, inst):
        assert inst is self.inst
        self.changes += 1

    def reclaim_kv(self, inst, blocks):
        """Gives back what is asked for, up to what is lent."""
        self.reclaims.append((self.now(), inst.id, blocks))
        inst.engine.reserved -= min(blocks, inst.engine.reserved)


MODEL = object()


def engine(prompts, outputs, arrivals, kv_blocks=100, spec=None, cost=None, prefill=1.0, decode=1.0, reserved=0):
    """An engine on a fresh host; request i is submitted at ``arrivals[i]``."""
    h = Host(prompts, outputs)
    inst = Inst(h, prefill, decode)
    e = make_engine(h, inst, MODEL, cost or Cost(MODEL), spec or EngineSpec(block_size=16), kv_blocks)
    e.reserved = reserved
    inst.engine, h.engine, h.inst = e, e, inst
    h.proc = h.env.process(e.run())

    def arrive(rid, t):
        yield h.env.timeout(t)
        e.submit(rid)

    for rid, t in enumerate(arrivals):
        h.env.process(arrive(rid, t))
    return h, e


def sample(h, e, times, attr):
    out = {}

    def at(t):
        yield h.env.timeout(t)
        out[t] = getattr(e, attr)

    for t in times:
        h.env.process(at(t))
    return out


def events(h, kind):
    return [x for x in h.log if x[1] == kind]


# ---- the cost of prefill steps and decode runs ---------------------------------------------------

def test_prefill_and_decode_times_use_every_coefficient_and_the_slowdown():
    # Requests 0 and 1 at 0 s: prompts 10 and 20, 3 and 4 tokens out. Prefill of both: 30 tokens,
    # 2 sequences: (0.01 + 0.001 x 30 + 0.002 x 2) x 1.5 (prefill slowdown) = 0.044 x 1.5 = 0.066 s.
    # Decode: step time (0.01 + 0.001 x batch + 0.0001 x context tokens) x 2 (decode slowdown); the
    # context grows by `batch` tokens a step, so n steps take n per + quad n (n - 1) / 2 with
    #   run 1: batch 2, context 11 + 21 = 32: per = 2 x 0.0152 = 0.0304, quad = 2 x 0.0001 x 2
    #          = 0.0004; 2 steps (request 0 is then done) take 0.0608 + 0.0004 = 0.0612 -> 0.1272.
    #   run 2: batch 1, context 23: per = 2 x 0.0133 = 0.0266, 1 step -> 0.1538.
    c = Cost(MODEL, per_seq=0.002, decode=DecodeCoeffs(0.01, 0.001, 0.0001))
    h, e = engine([10, 20], [3, 4], [0.0, 0.0], cost=c, prefill=1.5, decode=2.0)
    h.env.run()
    assert h.log == [(0.066, "first", 0), (0.066, "first", 1), (0.1272, "done", 0), (0.1538, "done", 1)]
    assert h.inst.calls == [(0.0, "prefill", 2, 30), (0.066, "decode", 2, None), (0.1272, "decode", 1, None)]
    assert e.steps == 3  # decode steps: 2 + 1


def test_busy_during_a_prefill_step_and_a_decode_run_only():
    # Request 0 at 1 s: prompt 10, 1 token (prefill 1.00 -> 1.02, done, idle). Request 1 at 2 s:
    # prompt 10, 3 tokens: prefill 2.00 -> 2.02, decode 2.02 -> 2.04.
    h, e = engine([10, 10], [1, 3], [1.0, 2.0])
    assert e.busy is False
    got = sample(h, e, [0.5, 1.01, 1.5, 2.01, 2.03, 2.5], "busy")
    h.env.run()
    assert got == {0.5: False, 1.01: True, 1.5: False, 2.01: True, 2.03: True, 2.5: False}
    assert h.log[-1] == (2.04, "done", 1)


# ---- admission: the prefill token cap ----------------------------------------------------------------

def test_a_prefill_step_takes_prompts_up_to_max_batched_tokens_inclusive():
    # Cap 20 tokens; prompts 10, 10, 10 at 0 s, one token each: the first step takes 10 + 10 = 20
    # (not over the cap) -> 0.01 + 0.020 = 0.03; the second the third prompt -> 0.03 + 0.02 = 0.05.
    h, _ = engine([10, 10, 10], [1, 1, 1], [0.0] * 3, spec=EngineSpec(block_size=16, max_batched_tokens=20))
    h.env.run()
    assert events(h, "first") == [(0.03, "first", 0), (0.03, "first", 1), (0.05, "first", 2)]
    assert h.inst.calls == [(0.0, "prefill", 2, 20), (0.03, "prefill", 1, 10)]


def test_a_prompt_over_the_cap_goes_alone_and_the_next_waits():
    # Cap 20; prompts 10 and 15: 25 > 20, so the first step is 10 tokens (0.02 s), the next 15 (0.025).
    # A lone prompt of 30 > 20 still goes (at least one sequence per step).
    h, _ = engine([10, 15, 30], [1, 1, 1], [0.0, 0.0, 1.0], spec=EngineSpec(block_size=16, max_batched_tokens=20))
    h.env.run()
    assert events(h, "first") == [(0.02, "first", 0), (0.045, "first", 1), (1.04, "first", 2)]


# ---- when an arrival cuts a decode run ----------------------------------------------------------------

def test_an_arrival_that_fits_cuts_the_run_at_the_next_step_boundary():
    # 10 blocks. Request 0 at 0 s: prompt 5, 11 out: prefill 0.015, then 10 steps (ctx 6 -> 16, one
    # block throughout) would end at 0.115. Request 1 at 0.043: prompt 143 needs ceil(144/16) = 9
    # blocks = the 9 free: the run is cut at the step boundary after 0.043, 0.015 + 3 x 0.01 = 0.045;
    # request 1 prefills 143 tokens (0.153 s) -> 0.198 and is done (1 token). Request 2 arrives at
    # 0.1, during that prefill, and prefills alone after it (0.015 s) -> 0.213. Request 0 then runs its
    # last 7 steps -> 0.283.
    h, e = engine([5, 143, 5], [11, 1, 1], [0.0, 0.043, 0.1], kv_blocks=10)
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.198, "first", 1), (0.198, "done", 1), (0.213, "first", 2),
                     (0.213, "done", 2), (0.283, "done", 0)]
    assert h.inst.calls == [(0.0, "prefill", 1, 5), (0.015, "decode", 1, None), (0.045, "prefill", 1, 143),
                            (0.198, "prefill", 1, 5), (0.213, "decode", 1, None)]
    assert e.steps == 10


def test_an_arrival_in_the_second_to_last_step_still_cuts_the_run():
    # Request 0 as above (run 0.015 -> 0.115). Request 1 (prompt 5, 1 token) at 0.1: 8 steps are
    # done, so the run stops after step 9 at 0.105; request 1 prefills -> 0.12; request 0's last step
    # -> 0.13.
    h, _ = engine([5, 5], [11, 1], [0.0, 0.1])
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.12, "first", 1), (0.12, "done", 1), (0.13, "done", 0)]


def test_an_arrival_needing_one_block_more_than_free_does_not_cut_the_run():
    # 10 blocks, 9 free. Request 1 at 0.043: prompt 144 needs ceil(145/16) = 10 > 9 blocks: no cut;
    # request 0 finishes at 0.115, then request 1 prefills 144 tokens (0.154 s) -> 0.269.
    h, _ = engine([5, 144], [11, 1], [0.0, 0.043], kv_blocks=10)
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.115, "done", 0), (0.269, "first", 1), (0.269, "done", 1)]
    assert h.inst.calls == [(0.0, "prefill", 1, 5), (0.015, "decode", 1, None), (0.115, "prefill", 1, 144)]


def test_a_cut_run_with_context_dependent_steps_ends_at_the_right_step_boundary():
    # Decode steps 0.01 + 0.001 x context s. Request 0 at 0 s (prompt 5, 11 out): prefill 0.015, then
    # a run from context 6: per = 0.016, quad = 0.001 (the context grows by one a step), 10 steps =
    # 0.16 + 0.045 = 0.205 -> 0.22. Request 1 (prompt 5, 1 token) at 0.1, 0.085 into the run: t(4) =
    # 0.070 <= 0.085 < t(5) = 0.09, so the run is cut after step 5 at 0.105; request 1 prefills ->
    # 0.12. Request 0's last 5 steps from context 11: per = 0.021, 5 steps = 0.105 + 0.01 -> 0.235.
    c = Cost(MODEL, decode=DecodeCoeffs(0.01, 0.0, 0.001))
    h, e = engine([5, 5], [11, 1], [0.0, 0.1], cost=c)
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.12, "first", 1), (0.12, "done", 1), (0.235, "done", 0)]
    assert h.inst.calls == [(0.0, "prefill", 1, 5), (0.015, "decode", 1, None), (0.105, "prefill", 1, 5),
                            (0.12, "decode", 1, None)]
    assert e.steps == 10


def test_an_arrival_at_the_instant_a_run_ends_does_not_lengthen_it():
    # Request 0's run ends at 0.015 + 10 x 0.01 = 0.115 (the same float the engine computes);
    # request 1 arrives at that instant, before the run's timer fires: all 10 steps are done, so
    # there is no step boundary to cut at; the run ends as planned and request 1 prefills after it.
    t_end = (0.01 + 0.001 * 5) + 10 * 0.01
    h, e = engine([5, 5], [11, 1], [0.0, t_end])
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.115, "done", 0), (0.13, "first", 1), (0.13, "done", 1)]
    assert e.steps == 10


def test_a_full_batch_is_not_cut_for_an_arrival():
    # max_num_seqs 1: request 1 (prompt 5) at 0.05 waits for request 0's run to end at 0.115.
    h, _ = engine([5, 5], [11, 1], [0.0, 0.05], spec=EngineSpec(block_size=16, max_num_seqs=1))
    h.env.run()
    assert h.log == [(0.015, "first", 0), (0.115, "done", 0), (0.13, "first", 1), (0.13, "done", 1)]
    assert h.inst.calls == [(0.0, "prefill", 1, 5), (0.015, "decode", 1, None), (0.115, "prefill", 1, 5)]


def test_stop_when_idle_during_a_run_lets_the_run_finish_then_the_loop_ends():
    h, e = engine([5], [11], [0.0])

    def stop():
        yield h.env.timeout(0.05)
        e.stop_when_idle()

    h.env.process(stop())
    h.env.run(until=0.1)
    assert h.proc.is_alive and e.running
    h.env.run(until=1.0)
    assert not h.proc.is_alive and h.log[-1] == (0.115, "done", 0)
    assert h.inst.calls == [(0.0, "prefill", 1, 5), (0.015, "decode", 1, None)]


# ---- lent KV blocks are reclaimed only when needed ------------------------------------------------------

def test_admission_reclaims_exactly_the_missing_blocks():
    # 4 blocks, 2 lent: 2 free. Request 0 (prompt 40) needs ceil(41/16) = 3: reclaim 1. Request 1 at
    # 1 s (prompt 10, 1 block) and request 2 at 2 s (prompt 20, 2 blocks = the 2 free after request
    # 0 is done... 3 free, 1 lent) need no reclaim.
    h, e = engine([40, 10, 20], [1, 1, 1], [0.0, 1.0, 2.0], kv_blocks=4, reserved=2)
    h.env.run()
    assert h.reclaims == [(0.0, 7, 1)]
    assert e.reserved == 1 and e.free_blocks == 3


def test_admission_needing_exactly_the_free_blocks_reclaims_nothing():
    h, e = engine([20], [1], [0.0], kv_blocks=4, reserved=2)  # ceil(21/16) = 2 = free
    h.env.run()
    assert h.reclaims == [] and e.reserved == 2 and events(h, "done") == [(0.03, "done", 0)]


def test_a_decode_run_out_of_blocks_takes_back_everything_lent_before_preempting():
    # 4 blocks, 2 lent. Prompt 31, 3 out: admitted with ceil(32/16) = 2 blocks (no reclaim), prefill
    # 0.041 s. Step 1 needs a third block, none free: the engine asks for all 2 lent blocks back, then
    # runs both steps -> 0.061. No preemption.
    h, e = engine([31], [3], [0.0], kv_blocks=4, reserved=2)
    h.env.run()
    assert h.reclaims == [(0.041, 7, 2)]
    assert e.reserved == 0 and h.log == [(0.041, "first", 0), (0.061, "done", 0)]


# Two sequences whose blocks run out together: only the sum over both shows it. Prompts 24 and 8 at
# 0 s, 41 tokens each: admitted with ceil(25/16) = 2 and ceil(9/16) = 1 blocks, prefill of 32 tokens
# 0.042 s; contexts 25 and 9. Both have 40 steps left, which would need ceil(65/16) + ceil(49/16) - 3
# = 6 more blocks (the exact fractions, 65/16 + 49/16 - 3 = 4.125, would say 5 fit; the second
# sequence alone needs 3). Steps that fit in 5 free blocks: 39 (4 + 3 - 3 = 4), run -> 0.432.

def test_a_run_stops_where_the_blocks_of_all_sequences_together_run_out():
    h, e = engine([24, 8], [41, 41], [0.0, 0.0], kv_blocks=8)
    h.env.run()
    # At 0.432 one step is left for each but needs 5 + 4 - 7 = 2 blocks, 1 free: the newest is
    # preempted (4 used, 3 freed). That step decodes request 0 (its last token) -> 0.442, as vLLM
    # 0.6.3's step that preempts does; then the recompute of request 1 (48 tokens, ceil(49/16) = 4
    # blocks) 0.058 s -> 0.5, which also produces its last token.
    assert h.log == [(0.042, "first", 0), (0.042, "first", 1), (0.432, "preempt", 1, 4, 3),
                     (0.442, "done", 0), (0.5, "done", 1)]


def test_lent_blocks_are_taken_back_only_when_not_one_step_fits():
    # As above with 10 blocks of which 2 lent (5 free): the first run is limited to 39 steps by the
    # blocks, but one step fits, so nothing is taken back then; at 0.432 no step fits: the 2 lent
    # blocks come back (3 free >= 2 needed) and both finish without a preemption.
    h, e = engine([24, 8], [41, 41], [0.0, 0.0], kv_blocks=10, reserved=2)
    h.env.run()
    assert h.reclaims == [(0.432, 7, 2)]
    assert h.log == [(0.042, "first", 0), (0.042, "first", 1), (0.442, "done", 0), (0.442, "done", 1)]


# ---- block and freed-block accounting, preemption --------------------------------------------------------

def test_preemption_frees_the_newest_sequence_blocks_and_counts_them_as_freed():
    # 6 blocks. At 0 s: request 0 prompt 40 (3 blocks), request 1 prompt 10 (1 block), request 2
    # prompt 10 (1 block, 1 token). One prefill of 60 tokens -> 0.07; request 2 is done there, its
    # block freed (freed 1). Running 0 (ctx 41, 3 blocks) and 1 (ctx 11, 1 block), 2 blocks free:
    # 21 steps fit (ctx 62 -> 4 blocks, ctx 32 -> 2 blocks, all 6 used) -> 0.28; step 22 needs one
    # more: request 1, the newest, is preempted: used 6 - 2 = 4, freed 1 + 2 = 3.
    # Request 0 alone: 18 steps -> 0.46 (5 blocks). Request 1 recomputes 10 + 22 = 32 tokens
    # (0.042 s) -> 0.502, then 17 steps -> 0.672 (ctx 33 + 17 = 50: 4 blocks). Freed in all:
    # 3 + 5 + 4 = 12.
    h, e = engine([40, 10, 10], [40, 40, 1], [0.0] * 3, kv_blocks=6)
    h.env.run()
    assert events(h, "preempt") == [(0.28, "preempt", 1, 4, 3)]
    # The recompute does not report a first token again: each request reports exactly one.
    assert events(h, "first") == [(0.07, "first", 0), (0.07, "first", 1), (0.07, "first", 2)]
    assert events(h, "done") == [(0.07, "done", 2), (0.46, "done", 0), (0.672, "done", 1)]
    assert e.used_blocks == 0 and e.take_freed() == 3 + 5 + 4 and e.take_freed() == 0


def test_sequences_finishing_together_free_all_their_blocks():
    h, e = engine([20, 20], [1, 1], [0.0, 0.0])  # 2 blocks each, both done after the prefill
    h.env.run()
    assert e.take_freed() == 4 and e.take_freed() == 0 and e.used_blocks == 0


def test_a_lone_request_too_big_for_the_cache_is_dropped_and_the_engine_is_idle_from_then():
    h, e = engine([100], [1], [5.0], kv_blocks=2)  # ceil(101/16) = 7 > 2
    h.env.run()
    assert h.log == [(5.0, "drop", 0, "exceeds_kv_capacity")]
    assert e.idle_since == 5.0 and h.changes == 1


def test_idle_since_moves_only_when_nothing_runs_or_waits():
    # One sequence at a time: two 1-token requests at 1 s finish at 1.02 and 1.04; at 1.03 the second
    # is running, so the engine has been "idle since" its creation (0) until 1.04.
    h, e = engine([10, 10], [1, 1], [1.0, 1.0], spec=EngineSpec(block_size=16, max_num_seqs=1))
    got = sample(h, e, [1.03, 1.5], "idle_since")
    h.env.run()
    assert got == {1.03: 0.0, 1.5: pytest.approx(1.04)}
    # Both in one batch: request 0 (1 token) is done at 1.03 while request 1 still decodes to 1.05.
    h, e = engine([10, 10], [1, 3], [1.0, 1.0])
    got = sample(h, e, [1.04, 1.5], "idle_since")
    h.env.run()
    assert got == {1.04: 0.0, 1.5: pytest.approx(1.05)}


# ---- the closed-form helpers against brute force ---------------------------------------------------------

def steps_done_brute(elapsed, per, quad, k):
    return max(n for n in range(k + 1) if n * per + quad * n * (n - 1) / 2 <= elapsed)


CASES = [(e, per, quad, k) for per, quad in [(0.5, 0.25), (0.01, 0.0004), (0.5, 0.0), (0.0, 0.0), (0.25, 1.5),
                                             (0.3, 0.6), (1e-3, 2.0)]
         for e in [0.0, 0.2, 0.5, 0.75, 1.0, 1.25, 1.75, 3.0, 4.5, 7.0, 100.0] for k in [0, 1, 2, 3, 7, 50]]


def test_steps_done_is_the_whole_steps_finished_by_elapsed():
    # t(n) = n per + quad n (n - 1) / 2; the answer is the largest n <= k with t(n) <= elapsed,
    # exact step boundaries included (0.5/0.25: t = 0, 0.5, 1.25, 2.25, ...; 0.25/1.5: t = 0, 0.25, 2.0).
    assert steps_done(1.25, 0.5, 0.25, 10) == 2 and steps_done(1.2499, 0.5, 0.25, 10) == 1
    assert steps_done(0.0, 0.0, 0.0, 5) == 5  # steps that take no time are all done at once
    for elapsed, per, quad, k in CASES:
        assert steps_done(elapsed, per, quad, k) == steps_done_brute(elapsed, per, quad, k), \
            (elapsed, per, quad, k)


@pytest.mark.parametrize("elapsed,per,quad,want", [
    (4.3, 0.1, 0.0, 43),          # 4.3 / 0.1 = 42.99999999999999: the estimate is one short
    (0.1, 0.1, 0.0004, 1),        # the quadratic formula gives 0.99999...: one short
    (0.2004, 0.1, 0.0004, 2),     # t(2) = 0.2 + 0.0004 exactly, the formula gives 1.999...
    (1.7, 0.1, 0.0, 16),          # 1.7 / 0.1 = 17.0 but t(17) = 1.7000000000000002 > 1.7: one over
])
def test_steps_done_corrects_the_closed_form_estimate_at_float_boundaries(elapsed, per, quad, want):
    if (elapsed, per, quad) == (0.2004, 0.1, 0.0004):
        elapsed = 2 * 0.1 + 0.0004 * 2 * 1 / 2  # t(2) as the engine computes it
    assert steps_done_brute(elapsed, per, quad, 100) == want
    assert steps_done(elapsed, per, quad, 100) == want


@pytest.mark.parametrize("per,quad,n0", [
    (0.186720359628823, 0.009925434121760652, 1),
    (0.9560782376173601, 0.009478274870593493, 5),
    (0.7362340190794547, 0.006697304014402209, 21),
])
def test_steps_done_corrects_an_estimate_one_step_over_just_before_a_boundary(per, quad, n0):
    # One ulp before the end of step n0 only n0 - 1 steps are done; the quadratic formula rounds up
    # to n0 for these coefficients (found by search), and the downward correction must undo it.
    elapsed = math.nextafter(n0 * per + quad * n0 * (n0 - 1) / 2, 0)
    a, b = quad / 2, per - quad / 2
    assert int((-b + math.sqrt(b * b + 4 * a * elapsed)) / (2 * a)) == n0  # the raw estimate overshoots
    assert steps_done_brute(elapsed, per, quad, 100) == n0 - 1
    assert steps_done(elapsed, per, quad, 100) == n0 - 1


def lookahead_brute(ctxs, held, free, bs, k):
    return max(n for n in range(k + 1) if sum(-(-(c + n) // bs) - b for c, b in zip(ctxs, held)) <= free)


def engine_with(ctxs, held, total, bs=16):
    h, e = engine([], [], [], kv_blocks=total, spec=EngineSpec(block_size=bs, max_num_seqs=1000))
    for i, (c, b) in enumerate(zip(ctxs, held)):
        s = Seq(i, c, 10_000)
        s.ctx, s.blocks = c, b
        e.running.append(s)
        e.used_blocks += b
    return e


def test_lookahead_counts_each_sequence_in_whole_blocks():
    # ctx 17 holds 2 blocks (15 tokens to spare), ctx 32 holds 2 (none): no block free, so not
    # even one step fits (the second sequence needs a third block), whatever the first one spares.
    e = engine_with([17, 32], [2, 2], total=4)
    assert steps_before_kv_full(e.running, e.spec.block_size, e.free_blocks, 10) == 0
    e = engine_with([17, 32], [2, 2], total=5)  # one free block: 16 steps (ctx 48 -> 3 blocks; 17 + 16 = 33 -> 3)
    assert steps_before_kv_full(e.running, e.spec.block_size, e.free_blocks, 40) == 15


@pytest.mark.parametrize("batch", [3, 64, 65, 70])
def test_lookahead_matches_brute_force_for_small_and_large_batches(batch):
    rng = np.random.default_rng(batch)
    for _ in range(20):
        ctxs = [int(c) for c in rng.integers(1, 200, batch)]
        held = [-(-c // 16) for c in ctxs]
        total = sum(held) + int(rng.integers(0, 3 * batch))
        k = int(rng.integers(1, 120))
        e = engine_with(ctxs, held, total)
        assert steps_before_kv_full(e.running, e.spec.block_size, e.free_blocks, k) == lookahead_brute(ctxs, held, e.free_blocks, 16, k)


def test_the_step_that_preempts_decodes_the_rest_before_the_preempted_sequence_is_tried_again():
    # 7 blocks of 16 tokens; three requests with 31-token prompts and 10 tokens out. After the prefill
    # each holds ctx 32 (2 blocks, 6 used, 1 free); the next step needs a third block for each: 3 > 1,
    # so request 2, the newest, is preempted (3 free). As in vLLM 0.6.3 (Scheduler._schedule_default)
    # that step decodes requests 0 and 1 (one block each, 1 free left), so request 2, which needs
    # ceil(33/16) = 3 blocks to come back, waits until they finish. Re-admitting it at once would let
    # it recompute a token per cycle while 0 and 1 never step.
    h, e = engine([31, 31, 31], [10, 10, 10], [0.0] * 3, kv_blocks=7)
    h.env.run()
    assert [x[2] for x in events(h, "preempt")] == [2]
    assert [x[2] for x in events(h, "done")] == [0, 1, 2]
    assert e.used_blocks == 0

