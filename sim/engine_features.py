"""The engine with vLLM 0.6.3's optional features: automatic prefix caching, chunked prefill, and
a row of metrics per step. :func:`make_engine` builds this class when ``EngineSpec`` turns one on.

Reference: vLLM v0.6.3.post1 (the version WarmServe's artifact forks; its engines run with neither
feature: ``vllm/entrypoints/controller/prewarm_manager.py::PrewarmManager.create_engine`` passes no
``--enable-prefix-caching`` and no ``--enable-chunked-prefill``, and with ``--max-model-len 2048``
``EngineArgs.create_engine_config`` leaves chunked prefill off). docs/simulator.md lists what is
reproduced and what is simplified; in short:

Prefix caching (``prefix_caching``, :mod:`warmsim.sim.prefix_cache`):

- admission is unchanged: a sequence needs ``ceil((c + 1) / B)`` blocks, counting cached (evictable)
  blocks as free, whatever it hits (0.6.3's ``can_allocate`` ignores hits);
- at admission every full block of the context is looked up by its key: a hit shares the block (a
  block in the evictor is taken back out), a miss takes a fresh block, from empty ones first, else
  by evicting; the tail and the block for the next token are unshared;
- the hit is the leading run of computed blocks among the first ``ceil(c / B) - 1`` (the last block
  is always computed: ``get_computed_block_ids(skip_last_block_id=True)``); it shortens the step's
  compute to ``c - hit`` tokens, not the token budget (0.6.3's scheduler charges the whole prompt);
- a block counts as computed from the step that schedules the chunk holding its last token on
  (``mark_blocks_as_computed`` at the end of ``schedule()``): two equal prompts admitted in one step
  both compute everything, one admitted a step later hits;
- a finished or preempted sequence releases its blocks at the end of its last step: full blocks
  (decode-filled ones too, under a key only that request can hit) go to the evictor, still hittable;
  a recomputed sequence hits what is left of them;
- KV lending takes blocks from the free list, evicting cached blocks when it is short; a lost
  instance loses its cache; a new instance (cold, prewarmed or woken) starts with an empty one.

Chunked prefill (``chunked_prefill``, ``Scheduler._schedule_chunked_prefill``): every step has a
budget of ``max_batched_tokens`` tokens; running decodes come first (one token each), then the
prefills in progress, then new sequences (first come, first served, while KV blocks and
``max_num_seqs`` allow), each taking ``min(remaining prompt, budget left)`` tokens (with prefix
caching rounded down to whole blocks unless the rest fits). A sequence's first token comes with its
last chunk. Steps with prefill work are one event each; once only decodes are left, decode steps run
in closed form as in :class:`~warmsim.sim.engine.Engine`.

Per-step metrics (``record_steps``): one row per prefill step, mixed step or run of decode steps
(the batch is the same through a run), appended to ``host.step_rows``.
"""

from __future__ import annotations

from simpy.events import Timeout

from warmsim.sim.engine import _BIG, _IDLE, _PREFILL, _STOPPED, Engine, EngineSpec, Seq
from warmsim.sim.prefix_cache import NEW, REVIVED, SHARED, PrefixCache, block_key
from warmsim.sim.recorder import STEP_COLUMNS  # noqa: F401  (the step rows this engine writes)


class PSeq(Seq):
    """A sequence with its prompt length, prompt-block ids, keyed blocks and prefill progress."""

    __slots__ = ("prompt", "ids", "keys", "hit", "pre", "marked")

    def __init__(self, rid: int, prompt: int, out: int):
        super().__init__(rid, prompt, out)
        self.prompt = prompt
        self.ids: list[int] | None = None  # its prompt-block ids (read at its first admission)
        self.keys: list[int] = []  # keys of its leading full blocks, the ones it holds keyed
        self.hit = 0  # context tokens its current prefill found computed in the cache
        self.pre = 0  # context tokens its current prefill has still to schedule (chunked prefill)
        self.marked = 0  # keyed blocks its scheduled chunks have marked computed


class FeatureEngine(Engine[PSeq]):
    """:class:`~warmsim.sim.engine.Engine` with prefix caching, chunked prefill and step rows (each
    optional; with all three off it behaves exactly as the base class)."""

    def __init__(self, host, instance, model, cost, spec, kv_blocks: int):
        super().__init__(host, instance, model, cost, spec, kv_blocks)
        self.cache = PrefixCache() if spec.prefix_caching else None
        prefix = getattr(host.workload, "prefix", None) if spec.prefix_caching else None
        self._ids = prefix  # the workload's PrefixBlocks (None: every block is the request's own)
        self._trace_block = prefix.block_tokens if prefix is not None else 1
        self._chunked = spec.chunked_prefill
        self._rows = host.step_rows if spec.record_steps else None
        self._on_hit = getattr(host, "on_prefix_hit", None) if spec.prefix_caching else None
        #: the step in progress: (start, kind, batch, seqs, tokens, computed, cached)
        self._step: tuple[float, str, int, int, int, int, int] | None = None
        self._plan: tuple[list[PSeq], list[tuple[PSeq, int]]] | None = None  # the mixed step in progress (chunked prefill): decodes, [(seq, chunk)]
        self.prefill_computed = 0  # prompt tokens computed by prefills (recomputes included)
        self.prefill_cached = 0  # prompt tokens prefills found in the cache

    # ---- interface ------------------------------------------------------------------------------
    @property
    def cached_blocks(self) -> int:
        """Blocks in the evictor: free for admission, still hittable."""
        return self.cache.cached if self.cache is not None else 0

    def submit(self, rid: int) -> None:
        w = self.host.workload
        self.waiting.append(PSeq(rid, w.prompt_tokens.item(rid), w.output_tokens.item(rid)))
        self._poke()

    def set_reserved(self, blocks: int) -> None:
        self.reserved = blocks
        self._evict_overflow()

    def halt(self) -> list[int]:
        rids = super().halt()
        self._plan = self._step = None
        if self.cache is not None:
            self.cache.clear()
        return rids

    # ---- blocks ----------------------------------------------------------------------------------
    def _evict_overflow(self) -> None:
        """Evict cached blocks until used + cached + lent fits the engine's blocks."""
        cache = self.cache
        if cache is not None:
            over = self.used_blocks + cache.cached + self.reserved - self.total_blocks
            if over > 0:
                cache.evict(over)

    def _allocate(self, seq: PSeq, need: int) -> None:
        """Give an admitted ``seq`` its ``need`` blocks; with prefix caching look its full blocks up
        and set ``seq.hit``."""
        seq.blocks = need
        cache = self.cache
        if cache is None:
            self.used_blocks += need
            seq.hit = 0
            return
        bs = self.spec.block_size
        ctx = seq.ctx
        full = ctx // bs
        limit = -(-ctx // bs) - 1  # the last block is never a hit
        if seq.ids is None and self._ids is not None:
            seq.ids = self._ids.of(seq.rid).tolist()
        ids, tb, rid, prompt = seq.ids, self._trace_block, seq.rid, seq.prompt
        keys = seq.keys
        hit, run = 0, True
        for j in range(full):
            key = block_key(ids, tb, bs, rid, prompt, j)
            got = cache.acquire(key)
            keys.append(key)
            if got == NEW or got == REVIVED:
                self.used_blocks += 1
                if got == NEW:
                    self._evict_overflow()
            if run and j < limit and (got == SHARED or got == REVIVED):
                hit += bs
            else:
                run = False
        self.used_blocks += need - full
        self._evict_overflow()
        seq.hit = hit

    def _mark(self, seq: PSeq, end: int) -> None:
        """The chunk ending at context token ``end`` is scheduled: its full keyed blocks are computed."""
        if self.cache is None:
            return
        upto = min(len(seq.keys), end // self.spec.block_size)
        for key in seq.keys[seq.marked:upto]:
            self.cache.mark_computed(key)
        if upto > seq.marked:
            seq.marked = upto

    def _free(self, seq: PSeq) -> int:
        """Release ``seq``'s blocks now; returns how many are no longer held by anyone."""
        cache = self.cache
        if cache is None:
            n = seq.blocks
        else:
            bs = self.spec.block_size
            keys = seq.keys
            full = min(seq.ctx // bs, seq.blocks)
            for j in range(len(keys), full):  # blocks filled by decode get their (own) keys
                key = block_key(seq.ids, self._trace_block, bs, seq.rid, seq.prompt, j)
                if not cache.adopt(key):
                    break
                keys.append(key)
            now = self.env.now
            n = seq.blocks - len(keys)
            for j, key in enumerate(keys):
                if cache.release(key, now, (j + 1) * bs):
                    n += 1
            seq.keys = []
            seq.marked = 0
        seq.blocks = 0
        self.used_blocks -= n
        self.freed += n
        return n

    # ---- admission (prefill steps without chunking) ----------------------------------------------
    def _admit(self) -> list[PSeq]:
        if self.cache is None:
            plain = super()._admit()
            if plain and self._rows is not None:
                self._step = (self.env.now, "prefill", len(plain), len(plain), self._step_tokens,
                              self._step_tokens, 0)
            return plain
        bs = self.spec.block_size
        admitted: list[PSeq] = []
        tokens = computed = 0
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
            self._allocate(seq, need)
            tokens += seq.ctx
            computed += seq.ctx - seq.hit
            self.running.append(seq)
            admitted.append(seq)
        for seq in admitted:
            self._mark(seq, seq.ctx)
        self._step_tokens = computed
        if admitted:
            self.prefill_computed += computed
            self.prefill_cached += tokens - computed
            self._step = (self.env.now, "prefill", len(admitted), len(admitted), tokens, computed, tokens - computed)
        return admitted

    def _after_prefill(self, admitted: list[PSeq]) -> None:
        if self._on_hit is not None:
            for seq in admitted:
                if not seq.started:
                    self._on_hit(seq.rid, seq.hit)
        super()._after_prefill(admitted)
        self._record()

    # ---- decode runs -----------------------------------------------------------------------------
    def _advance(self, k: int) -> None:
        bs = self.spec.block_size
        used = self.used_blocks
        done = False
        batch = len(self.running)
        for s in self.running:
            s.ctx += k
            gen = s.gen = s.gen + k
            nb = -(-s.ctx // bs)
            used += nb - s.blocks
            s.blocks = nb
            if gen >= s.out:
                done = True
        self.used_blocks = used
        self._evict_overflow()  # fresh blocks of the run come before the finished ones are freed
        self.steps += k
        if self._rows is not None:
            self._step = (self._run[0], "decode", batch, 0, 0, 0, 0)
            self._steps_in_run = k
        if done:
            self._retire(self.env.now)
        self._record()

    def _retire(self, now: float) -> None:
        done = [s for s in self.running if s.gen >= s.out]
        if not done:
            return
        self.running = [s for s in self.running if s.gen < s.out]
        if not self.running and not self.waiting:
            self.idle_since = now
        self.host.instance_changed(self.inst)
        for s in done:
            self._free(s)
            self.host.on_complete(s.rid, now)

    def _preempt_newest(self) -> None:
        seq = self.running.pop()
        self._free(seq)
        seq.pre = 0
        self.waiting.appendleft(seq)  # recompute: its prefill covers prompt + generated tokens
        self.host.on_preempt(seq.rid)

    # ---- step rows -------------------------------------------------------------------------------
    _steps_in_run = 1

    def _record(self) -> None:
        """Append the row of the step (or run) that just ended, with the engine's state after it."""
        rows, step = self._rows, self._step
        if rows is None or step is None:
            return
        self._step = None
        t0, kind, batch, seqs, tokens, computed, cached = step
        steps, self._steps_in_run = self._steps_in_run, 1
        rows.append((self.inst.id, getattr(self.model, "name", ""), t0, self.env.now, kind, steps, batch, seqs,
                     tokens, computed, cached, len(self.running), len(self.waiting), self.total_blocks,
                     self.used_blocks, self.cached_blocks, self.reserved))

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
                seq = self.waiting.popleft()  # nothing runs and the head cannot be admitted: it never fits
                self.host.on_drop(seq.rid, "exceeds_kv_capacity")
                if not self.waiting:
                    self.idle_since = self.env.now
                self.host.instance_changed(self.inst)
                continue
            # Only decodes: a run of decode steps in closed form, as in Engine._loop.
            k_fin = _BIG
            held = ctx = 0
            for s in self.running:
                left = s.out - s.gen
                if left < k_fin:
                    k_fin = left
                held += s.blocks
                ctx += s.ctx
            bs = self.spec.block_size
            need = -held
            for s in self.running:
                need += -(-(s.ctx + k_fin) // bs)
            if need <= self.free_blocks:
                k = k_fin
            else:
                k = self._steps_before_kv_full(k_fin)
                if k == 0 and self.reserved:
                    self.host.reclaim_kv(self.inst, self.reserved)
                    k = self._steps_before_kv_full(k_fin)
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
            need = -(-(seq.ctx + 1) // bs)
            if need > self.free_blocks and self.reserved:
                self.host.reclaim_kv(self.inst, need - self.free_blocks)
            if need > self.free_blocks:
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
