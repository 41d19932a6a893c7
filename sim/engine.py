"""A continuous-batching engine (vLLM-style) for one instance, without per-token events.

The engine alternates prefill steps (new sequences admitted, first tokens produced) and runs of
decode steps. Between changes of batch membership the decode steps are regular, so the time of the
k-th step is computed in closed form and one event is scheduled for the next completion (or for the
moment the KV cache would run out). An arrival that can be admitted cuts the run at the next step
boundary. KV blocks are accounted per sequence; when they run out the newest sequence is preempted
and later recomputed (its prompt and generated tokens are prefilled again).

The engine is not a SimPy process: it waits on at most one event at a time and acts in that event's
callback (a generator's resume and a ``timer | wake`` condition cost several times more per event).
An arrival during a decode run is looked at when it is submitted, not one event later.

Prefix caching, chunked prefill and per-step metrics (``EngineSpec.prefix_caching``,
``chunked_prefill``, ``record_steps``) live in :class:`warmsim.sim.engine_features.FeatureEngine`, a
subclass that :func:`~warmsim.sim.engine_features.make_engine` builds instead when any of them is
on: with all of them off (the paper's setup) this class runs alone and its hot path carries none of
their work. The closed-form arithmetic of a decode run is :mod:`warmsim.sim.decode_run`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from simpy.events import Event, Timeout

from warmsim.sim.cost import CostModel
from warmsim.sim.decode_run import steps_before_kv_full, steps_done
from warmsim.sim.engine_spec import EngineSpec
from warmsim.sim.models import ServedModel

if TYPE_CHECKING:
    from warmsim.sim.protocols import EngineHost


# What the engine waits on: nothing before start; a poke (idle); the wake-up event a poke scheduled
# (woken); the end of a prefill step; the end of a decode run (which an arrival may still cut, or
# has cut); nothing more (stopped or halted).
_NEW, _IDLE, _WOKEN, _PREFILL, _DECODE, _CUT, _STOPPED = range(7)
_BIG = 1 << 62  # more decode steps than any sequence has left


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


#: The sequence class an engine holds (:class:`Seq`, or a subclass with a feature's bookkeeping).
SeqT = TypeVar("SeqT", bound=Seq)


class Engine(Generic[SeqT]):
    """The serving loop of one instance. ``host``: the run (clock, callbacks), a
    :class:`warmsim.sim.protocols.EngineHost`. :func:`warmsim.sim.engine_features.make_engine` builds a
    :class:`~warmsim.sim.engine_features.FeatureEngine` instead when ``spec`` turns on one of its features."""

    def __init__(self, host: EngineHost, instance, model: ServedModel, cost: CostModel, spec: EngineSpec, kv_blocks: int):
        self.host = host
        self.env = host.env
        self.inst = instance
        self.model = model
        self.cost = cost
        self.spec = spec
        self.total_blocks = kv_blocks
        self.reserved = 0  # blocks lent back to the GPU pool (WarmServe's KV reservation)
        self.used_blocks = 0
        self.waiting: deque[SeqT] = deque()
        self.running: list[SeqT] = []
        self._mode = _NEW
        self._ev: Event | None = None  # the one event the engine acts on next; any other that fires is stale
        self._on_stop: Callable[[], None] | None = None
        self._admitted: list[SeqT] | None = None  # the sequences of the prefill step in progress
        self._run = (0.0, 0.0, 0.0)  # the decode run in progress: start, per-step time, its growth
        self._k = 0  # steps of the decode run in progress
        self.stopping = False
        self.decode = cost.decode_coeffs(model)
        self.steps = 0
        self.freed = 0  # blocks freed since the KV-reservation policy last looked
        self.busy = False  # a prefill step or a run of decode steps is in progress
        self.idle_since = self.env.now  # when the in-flight count last dropped to 0 (keep-alive)
        self._step_tokens = 0  # prompt tokens the prefill step that _admit just formed computes

    def take_freed(self) -> int:
        """Blocks freed since the last call (finished or preempted sequences)."""
        n, self.freed = self.freed, 0
        return n

    def set_reserved(self, blocks: int) -> None:
        """Lend ``blocks`` KV blocks in all to the GPU pool (KV reservation; the caller moves the bytes)."""
        self.reserved = blocks

    # ---- interface for the simulation ----------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self.waiting) + len(self.running)

    @property
    def free_blocks(self) -> int:
        return self.total_blocks - self.reserved - self.used_blocks

    def submit(self, rid: int) -> None:
        w = self.host.workload
        # The plain engine's sequences are plain (SeqT is Seq here; FeatureEngine overrides this). No
        # typing.cast: it is a function call per request on the hot path.
        self.waiting.append(Seq(rid, w.prompt_tokens.item(rid), w.output_tokens.item(rid)))  # type: ignore[arg-type]
        self._poke()

    def stop_when_idle(self) -> None:
        self.stopping = True
        self._poke()

    def start(self, on_stop: Callable[[], None] | None = None) -> None:
        """Start serving now; ``on_stop`` is called (synchronously) when the engine stops, i.e. once
        :meth:`stop_when_idle` was asked and nothing is left to run."""
        self._on_stop = on_stop
        self._loop()

    def run(self):
        """The engine as a SimPy process body: starts it and returns when it stops."""
        done = self.env.event()
        self.start(done.succeed)
        yield done

    def halt(self) -> list[int]:
        """Stop at once (the instance was lost): whatever the engine was waiting for is ignored;
        returns the requests it held (queued, then running), now forgotten with their blocks."""
        rids = [s.rid for s in self.waiting] + [s.rid for s in self.running]
        self.waiting.clear()
        self.running.clear()
        self.used_blocks = 0
        self._mode = _STOPPED
        self._ev = None
        self.busy = False
        return rids

    def _poke(self) -> None:
        """Something arrived (a request, a stop): an idle engine looks again at this instant (after
        the events already due now, so that simultaneous arrivals share a prefill); a decode run
        is cut at its next step boundary if the head of the queue can join."""
        mode = self._mode
        if mode == _IDLE:
            self._mode = _WOKEN
            ev = self._ev = self.env.event()
            ev.callbacks.append(self._on_wake)
            ev.succeed()
        elif mode == _DECODE:
            self._maybe_cut()

    # ---- the loop (callbacks of the one event the engine waits on) ------------------------------
    def _loop(self) -> None:
        """Decide what to do next: a prefill step, a run of decode steps, a drop, a preemption, or
        wait (idle) / stop."""
        dirty = self.host.kv_dirty
        iid = self.inst.id
        preempted = False  # a preemption in this pass: nothing more is admitted while something runs
        while True:
            dirty.add(iid)  # block counts may have changed since the last pass (KV reservation loop)
            if not self.running and not self.waiting:
                if self.stopping:
                    self._mode = _STOPPED
                    if self._on_stop is not None:
                        self._on_stop()
                    return
                self._mode = _IDLE
                return
            admitted = self._admit() if self.waiting and not (preempted and self.running) else None
            if admitted:
                tokens = self._step_tokens
                slow = self.inst.slowdown("prefill", len(admitted), tokens)
                self.busy = True
                self._mode = _PREFILL
                self._admitted = admitted
                ev = self._ev = Timeout(self.env, self.cost.prefill_s(self.model, tokens, len(admitted)) * slow)
                ev.callbacks.append(self._on_prefill_end)
                return
            running = self.running
            if not running:
                if self.elastic and -(-(self.waiting[0].ctx + 1) // self.spec.block_size) <= self.total_blocks:
                    self._mode = _IDLE  # the shared pool has no room now: the balloon pokes it later
                    return
                self._drop_head_that_never_fits()
                continue
            k, ctx = self._decode_run_steps()
            if k == 0:
                self._preempt_newest()
                preempted = True
                continue
            if preempted and not self.elastic:
                # vLLM 0.6.3 (Scheduler._schedule_default): the step that preempts decodes the rest, and
                # the next step tries the waiting queue (the preempted sequence at its head) first again.
                # Re-admitting it in the same pass instead would starve every running sequence while a
                # long prompt is recomputed a token at a time.
                k = 1
            self._start_decode(k, ctx)
            return

    def _on_wake(self, ev) -> None:
        if ev is self._ev:
            self._ev = None
            self._loop()

    def _on_prefill_end(self, ev) -> None:
        if ev is self._ev:
            self._ev = None
            self.busy = False
            admitted, self._admitted = self._admitted, None
            assert admitted is not None  # set with the prefill step's timer
            self._after_prefill(admitted)
            self._loop()

    def _on_decode_end(self, ev) -> None:
        if ev is self._ev:  # else: a timer the run's cut replaced, or the engine halted
            self._ev = None
            self.busy = False
            self._advance(self._k)
            self._loop()

    def _decode_run_steps(self) -> tuple[int, int]:
        """(steps, context tokens) of the next run of decode steps of the running sequences: the run
        lasts until the first sequence finishes, unless the KV cache runs out first (one pass for the
        common case that it does not, the exact search otherwise; lent blocks are taken back before a
        run of 0 steps is conceded, which means the newest sequence must be preempted)."""
        running = self.running
        k_fin = _BIG
        held = ctx = 0
        for s in running:
            left = s.out - s.gen
            if left < k_fin:
                k_fin = left
            held += s.blocks
            ctx += s.ctx
        bs = self.spec.block_size
        need = -held
        for s in running:
            need += -(-(s.ctx + k_fin) // bs)
        if need <= self.free_blocks:
            return k_fin, ctx
        k = steps_before_kv_full(running, bs, self.free_blocks, k_fin)
        if k == 0 and self.reserved:
            self.host.reclaim_kv(self.inst, self.reserved)
            k = steps_before_kv_full(running, bs, self.free_blocks, k_fin)
        return k, ctx

    def _blocks_for_head(self, seq: Seq) -> int | None:
        """KV blocks the waiting head ``seq`` needs to be admitted (its context and the token it will
        produce), after taking lent blocks back if that makes it fit; None if it does not fit."""
        need = -(-(seq.ctx + 1) // self.spec.block_size)
        if need > self.free_blocks and self.reserved:
            self.host.reclaim_kv(self.inst, need - self.free_blocks)
        return need if need <= self.free_blocks else None

    def _admit(self) -> list[SeqT]:
        admitted: list[SeqT] = []
        tokens = 0
        while self.waiting and len(self.running) < self.spec.max_num_seqs:
            seq = self.waiting[0]
            need = self._blocks_for_head(seq)
            if need is None:
                break
            if admitted and tokens + seq.ctx > self.spec.max_batched_tokens:
                break
            self.waiting.popleft()
            seq.blocks = need
            self.used_blocks += need
            tokens += seq.ctx
            self.running.append(seq)
            admitted.append(seq)
        self._step_tokens = tokens
        return admitted

    def _after_prefill(self, admitted: list[SeqT]) -> None:
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

    def _preempt_newest(self) -> None:
        seq = self.running.pop()
        self.used_blocks -= seq.blocks
        self.freed += seq.blocks
        seq.blocks = 0
        self.waiting.appendleft(seq)  # recompute: its prefill covers prompt + generated tokens
        self.host.on_preempt(seq.rid)

    def _start_decode(self, k: int, c0: int) -> None:
        """Run up to ``k`` decode steps of the running batch, which holds ``c0`` context tokens: one
        timer for the end of the run (cut by :meth:`_maybe_cut`)."""
        batch = len(self.running)
        slow = self.inst.slowdown("decode", batch)
        d = self.decode
        per = slow * (d.base_s + d.per_seq_s * batch + d.per_ctx_token_s * c0)
        quad = slow * d.per_ctx_token_s * batch  # each step attends to `batch` more tokens
        self._run = (self.env.now, per, quad)
        self._k = k
        self.busy = True
        self._mode = _DECODE
        ev = self._ev = Timeout(self.env, k * per + quad * k * (k - 1) / 2)
        ev.callbacks.append(self._on_decode_end)

    def _maybe_cut(self) -> None:
        """An arrival during a decode run: if the head of the queue can join, the run ends at the
        next step boundary (a new timer; the old one is ignored when it fires). At most one cut a run."""
        if not self._head_admissible():
            return
        self._mode = _CUT
        start, per, quad = self._run
        now = self.env.now
        n = steps_done(now - start, per, quad, self._k)
        if n + 1 < self._k:
            k = self._k = n + 1
            ev = self._ev = Timeout(self.env, max(0.0, start + (k * per + quad * k * (k - 1) / 2) - now))
            ev.callbacks.append(self._on_decode_end)

    #: KV blocks are mapped on demand from a shared pool (sim/mechanisms/balloon.py): arrivals may cut a decode
    #: run, a head with nothing running waits for the pool, a pass that preempted admits nothing more
    #: (docs/systems.md, "Note for the engine").
    elastic = False

    def _head_admissible(self) -> bool:
        if not self.waiting or len(self.running) >= self.spec.max_num_seqs:
            return False
        return -(-(self.waiting[0].ctx + 1) // self.spec.block_size) <= self.free_blocks + (
            self.reserved if self.elastic else 0)

    def _grow(self, k: int) -> bool:
        """Every running sequence ``k`` tokens further, its blocks and the engine's used blocks with
        it; True if one of them is done."""
        bs = self.spec.block_size
        used = self.used_blocks
        done = False
        for s in self.running:
            s.ctx += k
            gen = s.gen = s.gen + k
            nb = -(-s.ctx // bs)
            used += nb - s.blocks
            s.blocks = nb
            if gen >= s.out:
                done = True
        self.used_blocks = used
        return done

    def _advance(self, k: int) -> None:
        done = self._grow(k)
        self.steps += k
        if done:
            self._retire(self.env.now)

    def _drop_head_that_never_fits(self) -> None:
        """Nothing runs and the waiting head cannot be admitted: it can never fit this engine."""
        seq = self.waiting.popleft()
        self.host.on_drop(seq.rid, "exceeds_kv_capacity")
        if not self.waiting:
            self.idle_since = self.env.now
        self.host.instance_changed(self.inst)
