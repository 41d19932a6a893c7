"""A continuous-batching engine (vLLM-style) for one instance, without per-token events.

The engine alternates prefill steps (new sequences admitted, first tokens produced) and runs of
decode steps. Between changes of batch membership the decode steps are regular, so the time of the
k-th step is computed in closed form and one event is scheduled for the next completion (or for the
moment the KV cache would run out). An arrival that can be admitted cuts the run at the next step
boundary. KV blocks are accounted per sequence; when they run out the newest sequence is preempted
and later recomputed (its prompt and generated tokens are prefilled again).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.cost import CostModel
from sim.models import ServedModel

if TYPE_CHECKING:
    from sim.protocols import EngineHost


#: Batch size from which the KV look-ahead uses numpy arrays instead of Python integers.
_NUMPY_FROM = 64


@dataclass(frozen=True)
class EngineSpec:
    """Engine limits (vLLM's knobs)."""

    block_size: int = 256  # tokens per KV block (WarmServe's artifact: 256)
    max_num_seqs: int = 256  # sequences running at once
    max_batched_tokens: int = 2048  # prompt tokens per prefill step (at least one sequence always fits)


class Seq:
    """One request inside an engine."""

    __slots__ = ("rid", "ctx", "gen", "out", "blocks", "started")

    def __init__(self, rid: int, prompt: int, out: int):
        self.rid = rid
        self.ctx = prompt  # tokens whose KV the sequence holds or will hold after its next prefill
        self.gen = 0  # tokens generated so far
        self.out = out
        self.blocks = 0
        self.started = False  # first token emitted


class Engine:
    """The serving loop of one instance. ``host``: the run (clock, callbacks), a
    :class:`sim.protocols.EngineHost`."""

    def __init__(self, host: "EngineHost", instance, model: ServedModel, cost: CostModel, spec: EngineSpec, kv_blocks: int):
        self.host = host
        self.env = host.env
        self.inst = instance
        self.model = model
        self.cost = cost
        self.spec = spec
        self.total_blocks = kv_blocks
        self.reserved = 0  # blocks lent back to the GPU pool (WarmServe's KV reservation)
        self.used_blocks = 0
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.wake = None
        self.stopping = False
        self.decode = cost.decode_coeffs(model)
        self.steps = 0
        self.freed = 0  # blocks freed since the KV-reservation policy last looked
        self.busy = False  # a prefill step or a run of decode steps is in progress
        self.idle_since = self.env.now  # when the in-flight count last dropped to 0 (keep-alive)

    def take_freed(self) -> int:
        """Blocks freed since the last call (finished or preempted sequences)."""
        n, self.freed = self.freed, 0
        return n

    # ---- interface for the simulation ----------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self.waiting) + len(self.running)

    @property
    def free_blocks(self) -> int:
        return self.total_blocks - self.reserved - self.used_blocks

    def submit(self, rid: int) -> None:
        w = self.host.workload
        self.waiting.append(Seq(rid, int(w.prompt_tokens[rid]), int(w.output_tokens[rid])))
        self._poke()

    def stop_when_idle(self) -> None:
        self.stopping = True
        self._poke()

    def _poke(self) -> None:
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    # ---- the loop -------------------------------------------------------------------------------
    def run(self):
        env = self.env
        dirty = self.host.kv_dirty
        iid = self.inst.id
        while True:
            dirty.add(iid)  # block counts may have changed since the last pass (KV reservation loop)
            if not self.running and not self.waiting:
                if self.stopping:
                    return
                self.wake = env.event()
                yield self.wake
                continue
            admitted = self._admit()
            if admitted:
                tokens = sum(s.ctx for s in admitted)
                slow = self.inst.slowdown("prefill", len(admitted), tokens)
                self.busy = True
                yield env.timeout(self.cost.prefill_s(self.model, tokens, len(admitted)) * slow)
                self.busy = False
                self._after_prefill(admitted)
                continue
            if not self.running:
                # Nothing runs and the head cannot be admitted: it can never fit this engine.
                seq = self.waiting.popleft()
                self.host.on_drop(seq.rid, "exceeds_kv_capacity")
                if not self.waiting:
                    self.idle_since = env.now
                self.host.instance_changed(self.inst)
                continue
            k_fin = min(s.out - s.gen for s in self.running)
            k = self._steps_before_kv_full(k_fin)
            if k == 0 and self.reserved:
                self.host.reclaim_kv(self.inst, self.reserved)
                k = self._steps_before_kv_full(k_fin)
            if k == 0:
                self._preempt_newest()
                continue
            yield from self._decode(k)

    def _admit(self) -> list[Seq]:
        bs = self.spec.block_size
        admitted: list[Seq] = []
        tokens = 0
        while self.waiting and len(self.running) < self.spec.max_num_seqs:
            seq = self.waiting[0]
            need = -(-(seq.ctx + 1) // bs)
            if need > self.free_blocks and self.reserved:
                self.host.reclaim_kv(self.inst, need - self.free_blocks)
            if need > self.free_blocks:
                break
            if admitted and tokens + seq.ctx > self.spec.max_batched_tokens:
                break
            self.waiting.popleft()
            seq.blocks = need
            self.used_blocks += need
            tokens += seq.ctx
            self.running.append(seq)
            admitted.append(seq)
        return admitted

    def _after_prefill(self, admitted: list[Seq]) -> None:
        now = self.env.now
        for seq in admitted:
            seq.ctx += 1
            seq.gen += 1
            if not seq.started:
                seq.started = True
                self.host.on_first_token(seq.rid, now)
        self._retire(now)

    def _retire(self, now: float) -> None:
        done = [s for s in self.running if s.gen >= s.out]
        if not done:
            return
        self.running = [s for s in self.running if s.gen < s.out]
        if not self.running and not self.waiting:
            self.idle_since = now
        self.host.instance_changed(self.inst)
        for s in done:
            self.used_blocks -= s.blocks
            self.freed += s.blocks
            self.host.on_complete(s.rid, now)

    def _steps_before_kv_full(self, k_max: int) -> int:
        """The largest n <= k_max such that n more decode steps fit in the free KV blocks."""
        bs = self.spec.block_size
        free = self.free_blocks
        if len(self.running) <= _NUMPY_FROM:
            # Exact integer arithmetic either way; plain Python is faster for small batches.
            ctxs = [s.ctx for s in self.running]
            held_sum = sum(s.blocks for s in self.running)

            def need(n: int) -> int:
                return sum([-(-(c + n) // bs) for c in ctxs]) - held_sum
        else:
            ctx = np.fromiter((s.ctx for s in self.running), dtype=np.int64, count=len(self.running))
            held = np.fromiter((s.blocks for s in self.running), dtype=np.int64, count=len(self.running))

            def need(n: int) -> int:
                return int((-(-(ctx + n) // bs) - held).sum())

        if need(k_max) <= free:
            return k_max
        lo, hi = 0, k_max  # need(lo) <= free < need(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if need(mid) <= free:
                lo = mid
            else:
                hi = mid
        return lo

    def _preempt_newest(self) -> None:
        seq = self.running.pop()
        self.used_blocks -= seq.blocks
        self.freed += seq.blocks
        seq.blocks = 0
        self.waiting.appendleft(seq)  # recompute: its prefill covers prompt + generated tokens
        self.host.on_preempt(seq.rid)

    def _decode(self, k: int):
        """Run up to ``k`` decode steps, stopping early at a step boundary if an arrival can join."""
        env = self.env
        batch = len(self.running)
        c0 = sum(s.ctx for s in self.running)
        slow = self.inst.slowdown("decode", batch)
        d = self.decode
        per = slow * (d.base_s + d.per_seq_s * batch + d.per_ctx_token_s * c0)
        quad = slow * d.per_ctx_token_s * batch  # each step attends to `batch` more tokens

        def t_of(n: int) -> float:
            return n * per + quad * n * (n - 1) / 2

        start = env.now
        self.busy = True
        timer = env.timeout(t_of(k))
        while True:
            # ``timer | wake`` without a Condition object: one event that the first of the two
            # triggers, scheduled exactly when the Condition would have been (same event order).
            self.wake = wake = env.event()
            either = env.event()

            def first(_ev, either=either):
                if not either.triggered:
                    either.succeed()

            timer.callbacks.append(first)
            wake.callbacks.append(first)
            yield either
            if timer.processed:
                break
            if not self._head_admissible():
                continue
            n = self._steps_done(env.now - start, per, quad, k)
            if n + 1 < k:
                k = n + 1
                yield env.timeout(max(0.0, start + t_of(k) - env.now))
            else:
                yield timer
            break
        self.wake = None
        self.busy = False
        self._advance(k)

    def _head_admissible(self) -> bool:
        if not self.waiting or len(self.running) >= self.spec.max_num_seqs:
            return False
        return -(-(self.waiting[0].ctx + 1) // self.spec.block_size) <= self.free_blocks

    @staticmethod
    def _steps_done(elapsed: float, per: float, quad: float, k: int) -> int:
        """Whole steps finished ``elapsed`` seconds into a run (t(n) = n per + quad n(n-1)/2)."""
        if quad > 0:
            a, b = quad / 2, per - quad / 2
            n = int((-b + math.sqrt(b * b + 4 * a * elapsed)) / (2 * a))
        else:
            n = int(elapsed / per) if per > 0 else k
        n = max(0, min(n, k))
        while n > 0 and n * per + quad * n * (n - 1) / 2 > elapsed:
            n -= 1
        while n < k and (n + 1) * per + quad * (n + 1) * n / 2 <= elapsed:
            n += 1
        return n

    def _advance(self, k: int) -> None:
        bs = self.spec.block_size
        for s in self.running:
            s.ctx += k
            s.gen += k
            nb = -(-s.ctx // bs)
            self.used_blocks += nb - s.blocks
            s.blocks = nb
        self.steps += k
        self._retire(self.env.now)
