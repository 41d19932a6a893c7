"""The engine with vLLM 0.6.3's optional features: automatic prefix caching and per-step metrics
(:class:`warmsim.sim.engine_prefix.PrefixEngine`) and, here, chunked prefill. :func:`make_engine`
builds :class:`FeatureEngine` when ``EngineSpec`` turns one of them on.

Reference: vLLM v0.6.3.post1 (the version WarmServe's artifact forks; its engines run with neither
feature: ``vllm/entrypoints/controller/prewarm_manager.py::PrewarmManager.create_engine`` passes no
``--enable-prefix-caching`` and no ``--enable-chunked-prefill``, and with ``--max-model-len 2048``
``EngineArgs.create_engine_config`` leaves chunked prefill off). docs/simulator.md lists what is
reproduced and what is simplified; in short:

Chunked prefill (``chunked_prefill``, ``Scheduler._schedule_chunked_prefill``): every step has a
budget of ``max_batched_tokens`` tokens; running decodes come first (one token each), then the
prefills in progress, then new sequences (first come, first served, while KV blocks and
``max_num_seqs`` allow), each taking ``min(remaining prompt, budget left)`` tokens (with prefix
caching rounded down to whole blocks unless the rest fits). A sequence's first token comes with its
last chunk. Steps with prefill work are one event each; once only decodes are left, decode steps run
in closed form as in :class:`~warmsim.sim.engine.Engine`.
"""

from __future__ import annotations

from simpy.events import Timeout

from warmsim.sim.engine import _IDLE, _PREFILL, _STOPPED, Engine, EngineSpec
from warmsim.sim.engine_prefix import PrefixEngine, PSeq


class FeatureEngine(PrefixEngine):
    """:class:`~warmsim.sim.engine_prefix.PrefixEngine` with chunked prefill (each feature optional;
    with all three off it behaves exactly as :class:`~warmsim.sim.engine.Engine`)."""

    # ---- chunked prefill -------------------------------------------------------------------------
    def _loop(self) -> None:
        if not self._chunked:
            super()._loop()
            return
        dirty = self.host.kv_dirty
        iid = self.inst.id
        while True:
            dirty.add(iid)
            if not self.running and not self.waiting:
                if self.stopping:
                    self._mode = _STOPPED
                    if self._on_stop is not None:
                        self._on_stop()
                    return
                self._mode = _IDLE
                return
            plan = self._plan_step()
            if plan == "preempted":
                continue
            if plan is not None:
                self._start_mixed(*plan)
                return
            if not self.running:
                self._drop_head_that_never_fits()
                continue
            # Only decodes: a run of decode steps in closed form, as in Engine._loop.
            k, ctx = self._decode_run_steps()
            if k == 0:
                self._preempt_newest()
                continue
            self._start_decode(k, ctx)
            return

    def _chunk(self, left: int, budget: int) -> int:
        """Tokens of a prefill with ``left`` tokens to go in a step with ``budget`` left
        (``Scheduler._get_num_new_tokens``: whole blocks with prefix caching unless the rest fits)."""
        if left <= budget:
            return left
        if self.cache is not None:
            bs = self.spec.block_size
            return budget // bs * bs
        return budget

    def _plan_step(self):
        """The next step if it has prefill work (decodes first, then prefills in progress, then new
        ones): ``(decodes, chunks, admitted)``; ``"preempted"`` if the decodes' blocks forced a
        preemption; None if only decodes are left (or nothing can run)."""
        bs = self.spec.block_size
        running = self.running
        decodes = [s for s in running if not s.pre]
        prefilling = len(decodes) < len(running)
        grow = 0
        for s in decodes:
            grow += -(-(s.ctx + 1) // bs) - s.blocks
        if not prefilling:
            if not self.waiting or len(running) >= self.spec.max_num_seqs:
                return None
            head = -(-(self.waiting[0].ctx + 1) // bs)
            if head + grow > self.free_blocks + self.reserved:
                return None
        if grow > self.free_blocks:
            if self.reserved:
                self.host.reclaim_kv(self.inst, grow - self.free_blocks)
            if grow > self.free_blocks:
                self._preempt_newest()
                return "preempted"
        for s in decodes:  # the decodes' blocks are taken when the step is scheduled
            nb = -(-(s.ctx + 1) // bs)
            self.used_blocks += nb - s.blocks
            s.blocks = nb
        self._evict_overflow()
        budget = self.spec.max_batched_tokens - len(decodes)
        chunks: list[tuple[PSeq, int]] = []
        for s in running:
            if s.pre:
                c = self._chunk(s.pre, budget)
                if c == 0:
                    break
                chunks.append((s, c))
                budget -= c
        admitted = []
        while self.waiting and len(running) < self.spec.max_num_seqs and budget > 0:
            seq = self.waiting[0]
            need = self._blocks_for_head(seq)
            if need is None:
                break
            c = self._chunk(seq.ctx, budget)
            if c == 0:
                break
            self.waiting.popleft()
            self._allocate(seq, need)
            seq.pre = seq.ctx
            running.append(seq)
            admitted.append(seq)
            chunks.append((seq, c))
            budget -= c
        if not chunks and not decodes:
            return None
        return decodes, chunks, admitted

    def _start_mixed(self, decodes: list[PSeq], chunks: list[tuple[PSeq, int]], admitted: list[PSeq]) -> None:
        """One step of decodes and prefill chunks: a prefill step over the chunks' uncached tokens,
        plus each decode's marginal cost (the step's fixed cost is paid once)."""
        tokens = computed = 0
        for s, c in chunks:
            start = s.ctx - s.pre
            end = start + c
            tokens += c
            computed += end - max(start, s.hit) if s.hit < end else 1
            self._mark(s, end)
        d = self.decode
        ctx = sum(s.ctx for s in decodes)
        nd = len(decodes)
        if chunks:
            slow = self.inst.slowdown("prefill", len(chunks) + nd, computed)
            t = self.cost.prefill_s(self.model, computed, len(chunks)) + d.per_seq_s * nd + d.per_ctx_token_s * ctx
        else:
            slow = self.inst.slowdown("decode", nd)
            t = d.base_s + d.per_seq_s * nd + d.per_ctx_token_s * ctx
        self.prefill_computed += computed
        self.prefill_cached += tokens - computed
        self._plan = (decodes, chunks)
        self._step = (self.env.now, "mixed" if chunks and decodes else "prefill" if chunks else "decode",
                      nd + len(chunks), len(chunks), tokens, computed, tokens - computed)
        self.busy = True
        self._mode = _PREFILL
        ev = self._ev = Timeout(self.env, t * slow)
        ev.callbacks.append(self._on_mixed_end)

    def _on_mixed_end(self, ev) -> None:
        if ev is not self._ev:
            return
        self._ev = None
        self.busy = False
        plan, self._plan = self._plan, None
        assert plan is not None  # set with the mixed step's timer
        decodes, chunks = plan
        now = self.env.now
        for s in decodes:
            s.ctx += 1
            s.gen += 1
        if decodes:
            self.steps += 1
        for s, c in chunks:
            s.pre -= c
            if not s.pre:  # its last chunk: the next token comes out
                s.ctx += 1
                s.gen += 1
                if not s.started:
                    if self._on_hit is not None:
                        self._on_hit(s.rid, s.hit)
                    s.started = True
                    self.host.on_first_token(s.rid, now)
        self._retire(now)
        self._record()
        self._loop()


def make_engine(host, instance, model, cost, spec: EngineSpec, kv_blocks: int) -> Engine:
    """The engine of one instance: a :class:`FeatureEngine` when ``spec`` turns on one of its
    features, else the plain :class:`~warmsim.sim.engine.Engine` (whose hot path carries none of
    their work)."""
    cls = FeatureEngine if spec.features else Engine
    return cls(host, instance, model, cost, spec, kv_blocks)
