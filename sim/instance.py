"""A serving instance: its lifecycle (starting -> loading -> initialising -> active -> draining ->
stopped) and the engine it runs once active."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import simpy

from warmsim.sim.engine_features import make_engine
from warmsim.sim.faults import LOST
from warmsim.sim.memory import KV, WEIGHTS
from warmsim.sim.models import ServedModel
from warmsim.sim.protocols import EngineHost
from warmsim.sim.recorder import START_COLD, START_PREWARMED, START_WARM
from warmsim.sim.startup import StartStages, poll_delay_s, start_stages
from warmsim.sim.types import ACTIVE, DRAINING, INITIALISING, LOADING, STARTING, STOPPED, InstanceView

if TYPE_CHECKING:
    from warmsim.sim.cluster import Cluster, HostCache
    from warmsim.sim.cost import CostModel
    from warmsim.sim.engine import EngineSpec
    from warmsim.sim.memswitch import MemorySwitch
    from warmsim.sim.recorder import Recorder
    from warmsim.sim.replica import Replica
    from warmsim.sim.startup import StartPath


class InstanceHost(EngineHost, Protocol):
    """What an instance may ask of the run that hosts it (the simulation implements it). Besides an
    engine's needs (:class:`warmsim.sim.protocols.EngineHost`): costs, mechanisms, memory, weight
    loads and lifecycle callbacks."""

    engine_spec: EngineSpec
    cost: CostModel
    recorder: Recorder
    cluster: Cluster
    memswitch: MemorySwitch
    start_path: StartPath  # the stages of a start the system has paid beforehand (sim/startup.py)

    def record_instance(self, inst: Instance) -> None: ...
    def state_changed(self, inst: Instance, old: str, new: str) -> None: ...
    def step_slowdown(self, inst: Instance, phase: str, batch: int, tokens: int | None = None) -> float: ...
    def load_weights(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, background: bool = False,
                     replica=None, peer: Instance | None = None) -> Generator: ...
    def adopt_replica(self, inst: Instance) -> None: ...
    def on_instance_active(self, inst: Instance) -> None: ...
    def on_instance_draining(self, inst: Instance) -> None: ...
    def on_instance_stopped(self, inst: Instance) -> None: ...


class Instance:
    """One instance of ``model`` on ``gpus``. Its memory is committed when it is created."""

    def __init__(self, host: InstanceHost, ident: int, model: ServedModel, gpus: tuple[int, ...], source: str,
                 replica=None, compute_share: float = 1.0, kv_bytes_per_gpu: int = 0, ready_at_start=False,
                 peer: Instance | None = None, max_num_seqs: int | None = None):
        self.host = host
        self.id = ident
        self.model = model
        self.gpus = gpus
        self.source = source
        self.replica = replica
        self.compute_share = compute_share
        self.kv_bytes_per_gpu = kv_bytes_per_gpu
        self.created = host.env.now
        self.state = ACTIVE if ready_at_start else STARTING
        self.start_kind = (START_WARM if ready_at_start else
                           START_PREWARMED if replica is not None else START_COLD)
        block_bytes = host.engine_spec.block_size * model.kv_bytes_per_token_per_gpu
        spec = host.engine_spec if max_num_seqs is None else replace(host.engine_spec, max_num_seqs=max_num_seqs)
        self.max_num_seqs = max_num_seqs
        self.engine = make_engine(host, self, model, host.cost, spec, kv_bytes_per_gpu // block_bytes)
        self.block_bytes = block_bytes
        self.pending: list[int] = []  # requests routed here before the engine runs
        self.counted_pending = False  # counted among its model's instance starts in progress
        self.active_at: float | None = 0.0 if ready_at_start else None
        self.successor: Replica | None = None  # the replica its weights become when it stops (keep_weights_on_stop)
        self.peer = peer  # the running instance its weights are copied from (peer sources)
        self.copies_out = 0  # copies of its weights to new instances in progress
        self._copies_done: simpy.Event | None = None  # event a stopping instance waits on while copies_out > 0
        if peer is not None:
            peer.hold_for_copy(+1)  # from its creation until its copy ends, it keeps the peer's weights

    # ---- views ----------------------------------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self.pending) + self.engine.inflight

    def view(self) -> InstanceView:
        """This instance as policies see it (memoised until its state, in-flight count or idle time changes)."""
        state = self.state
        inflight = len(self.pending) + len(self.engine.waiting) + len(self.engine.running)
        # Idle since the engine last emptied, or since the instance became active (or was created).
        since = self.created if self.active_at is None else self.active_at
        idle = None if inflight else max(self.engine.idle_since, since)
        v = self._view
        if v is None or v.state != state or v.inflight != inflight or v.idle_since != idle:
            v = self._view = InstanceView(self.id, self.model.name, self.gpus, state, inflight, self.created,
                                          self.compute_share, idle, self.max_num_seqs)
        return v

    _view: InstanceView | None = None

    def slowdown(self, phase: str, batch: int, tokens: int | None = None) -> float:
        """Factor on the time of one ``phase`` step ("prefill" or "decode") of ``batch`` sequences
        (``tokens`` prompt tokens in a prefill):
        GPU sharing (compute share, busy neighbours) and background copies."""
        return self.host.step_slowdown(self, phase, batch, tokens)

    # ---- requests -------------------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        rec = self.host.recorder
        rec.instance[rid] = self.id
        self.host.instance_changed(self)
        if self.state == ACTIVE or self.state == DRAINING:
            # A request held at the router while this instance started waited for that start too.
            if self.host.workload.arrival_s.item(rid) < self.active_at:
                rec.start_kind[rid] = self.start_kind
            self.engine.submit(rid)
        else:
            self.host.recorder.start_kind[rid] = self.start_kind
            self.pending.append(rid)

    # ---- lifecycle ------------------------------------------------------------------------------
    #: The SimPy process running :meth:`lifecycle` (set when the simulation starts it).
    process: simpy.Process | None = None
    #: The host cache whose checkpoint this start will read (pinned until the load ends).
    cache_pin: HostCache | None = None
    #: The instance was lost to a fault (sim.faults); it may stop from any state.
    failed = False
    #: Start stages a mechanism set for this start instead of the system's start path (a wake:
    #: ``sim/mechanisms/sleep.py``); ``None``: :func:`~warmsim.sim.startup.start_stages`.
    stages: StartStages | None = None

    def release_cache_pin(self) -> None:
        """The load from the host cache ended (or will never happen): the checkpoint may go."""
        if self.cache_pin is not None:
            self.cache_pin.unpin(self.model.name)
            self.cache_pin = None

    def lifecycle(self):
        """The start sequence, then serving; a fault that loses the instance interrupts it anywhere."""
        try:
            yield from self._lifecycle()
        except simpy.Interrupt as exc:
            if exc.cause != LOST:
                raise

    def _lifecycle(self):
        """The start path (:mod:`warmsim.sim.startup`): the stages the system has not paid yet, charged
        from the cost model in order, the weights through the flow network; then serving."""
        h = self.host
        env = h.env
        if self.state == ACTIVE:
            self._serve()
            return
        h.record_instance(self)
        path = h.start_path
        st = self.stages or start_stages(h.cost, self.model, path, h.engine_spec, h.memswitch.name,
                                         self.kv_bytes_per_gpu, self.replica is not None)
        before = st.process_s + st.engine_process_s
        if path.prefetch and self.replica is None:
            yield from self._prefetched(st, before)
        else:
            if before:
                yield env.timeout(before)
            self.set_state(LOADING)
            if not path.overlap_load and st.engine_prepare_s:
                yield env.timeout(st.engine_prepare_s)
            t_load = env.now
            yield from self._load(st)
            if path.overlap_load:  # the engine prepared while the weights moved: wait for the longer
                rest = t_load + st.engine_prepare_s - env.now
                if rest > 0:
                    yield env.timeout(rest)
        self.set_state(INITIALISING)
        if st.after_load_s:
            yield env.timeout(st.after_load_s)
        poll = poll_delay_s(env.now - self.created, path.ready_poll_s)
        if poll:
            yield env.timeout(poll)
        self._serve()

    def _prefetched(self, st: StartStages, before: float):
        """``StartPath.prefetch``: the weights move from the instance's creation, beside the process
        start, the engine's imports and its preparation; the TP communicator follows both."""
        env = self.host.env
        fetch = env.process(self._weights())
        if before:
            yield env.timeout(before)
        self.set_state(LOADING)
        if st.engine_prepare_s:
            yield env.timeout(st.engine_prepare_s)
        if not fetch.triggered:
            yield fetch
        if st.tp_comm_s:
            yield env.timeout(st.tp_comm_s)

    def _load(self, st: StartStages):
        """Weights in place (a prewarmed replica taken over, or loaded from the source) and the TP
        communicator built."""
        yield from self._weights()
        if st.tp_comm_s:
            yield self.host.env.timeout(st.tp_comm_s)

    def _weights(self):
        """Weights in place: a prewarmed replica taken over, or loaded from the source through the
        memory switch."""
        h = self.host
        env = h.env
        ms = h.memswitch  # the memory-switch mechanism (sim.memswitch): None = no wait at that point
        if self.replica is not None:
            if not self.replica.ready.triggered:
                yield self.replica.ready
            h.adopt_replica(self)
            wait = ms.on_adopt_s(h.cost, self.sync_free_s)
            if wait is not None:
                yield env.timeout(wait)
        else:
            shard = self.model.shard_bytes
            wait = ms.before_load_s(h.cost, shard, self.sync_free_s)
            if wait is not None:
                yield env.timeout(wait)
            t0 = env.now
            yield from h.load_weights(self.model, self.gpus, self.source, tag=("instance", self.id), peer=self.peer)
            self.release_cache_pin()
            if self.peer is not None:
                self.peer.hold_for_copy(-1)
                self.peer = None
            yield env.timeout(h.cost.load_overhead_s(self.source, shard))
            wait = ms.after_load_s(h.cost, shard, env.now - t0)
            if wait is not None:
                yield env.timeout(wait)

    #: Seconds of synchronous cudaFree for replicas evicted to make room (free_malloc only).
    sync_free_s: float = 0.0

    def _serve(self) -> None:
        """Become active and start the engine (a callback machine, not part of this process); the
        process ends here, the engine calls :meth:`_engine_stopped` when it stops."""
        self.active_at = self.host.env.now
        self.set_state(ACTIVE)
        self.host.on_instance_active(self)
        for rid in self.pending:
            self.engine.submit(rid)
        self.pending.clear()
        self.engine.start(self._engine_stopped)

    def _engine_stopped(self) -> None:
        if self.copies_out:  # new instances are still copying these weights: stop when they end
            ev = self._copies_done = self.host.env.event()
            ev.callbacks.append(self._copies_ended)
        else:
            self.host.on_instance_stopped(self)

    def _copies_ended(self, _ev) -> None:
        if not self.failed:  # a lost instance was stopped by the fault
            self.host.on_instance_stopped(self)

    def hold_for_copy(self, delta: int) -> None:
        """Count a copy of this instance's weights starting (+1) or ending (-1)."""
        self.copies_out += delta
        if self.copies_out == 0 and self._copies_done is not None:
            self._copies_done.succeed()
            self._copies_done = None

    def drain(self) -> None:
        """Stop taking requests; stop once the running ones finish."""
        if self.state in (DRAINING, STOPPED):
            return
        self.set_state(DRAINING)
        self.host.on_instance_draining(self)
        self.engine.stop_when_idle()

    def set_state(self, state: str) -> None:
        """Move to ``state``: the host counts the change (live instances, views) and records it."""
        old, self.state = self.state, state
        self.host.state_changed(self, old, state)
        self.host.record_instance(self)

    def commit_memory(self) -> None:
        for g in self.gpus:
            mem = self.host.cluster.gpus[g].mem
            if self.replica is None:
                mem.set(WEIGHTS, self.id, self.model.shard_bytes)
            mem.set(KV, self.id, self.kv_bytes_per_gpu)

    def release_memory(self) -> None:
        for g in self.gpus:
            mem = self.host.cluster.gpus[g].mem
            mem.release(WEIGHTS, self.id)
            mem.release(KV, self.id)
