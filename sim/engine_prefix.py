"""Prefix caching and per-step metrics for the engine (vLLM 0.6.3's automatic prefix caching and
a row of metrics per step): :class:`PrefixEngine` keeps keyed blocks and step rows, with prefills
that are not chunked; :class:`warmsim.sim.engine_features.FeatureEngine` adds chunked prefill on top.

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

Per-step metrics (``record_steps``): one row per prefill step, mixed step or run of decode steps
(the batch is the same through a run), appended to ``host.step_rows``.
"""

from __future__ import annotations

from warmsim.sim.engine import Engine, Seq
from warmsim.sim.prefix_cache import NEW, REVIVED, SHARED, PrefixCache, block_key


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


class PrefixEngine(Engine[PSeq]):
    """:class:`~warmsim.sim.engine.Engine` with prefix caching and step rows (each optional; with both
    off it behaves exactly as the base class). Its state includes the mixed step a chunked prefill
    (:class:`~warmsim.sim.engine_features.FeatureEngine`) has in progress, so that a halt clears it."""

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
        admitted: list[PSeq] = []
        tokens = computed = 0
        while self.waiting and len(self.running) < self.spec.max_num_seqs:
            seq = self.waiting[0]
            need = self._blocks_for_head(seq)
            if need is None:
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
        batch = len(self.running)
        done = self._grow(k)
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
