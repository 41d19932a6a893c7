"""An invariant checker that runs inside any simulation (``sim.check_invariants=true``; always on in
the test suite).

After every SimPy event it checks what that event may have changed, and at the end of the run it
checks every request once more:

- the clock never goes back;
- no GPU's memory is over-committed, and its per-kind and per-owner accounts add up;
- a GPU belongs to at most one TP group: a dedicated instance is alone on its GPUs, colocated
  instances' compute shares sum to at most 1, and every instance's GPUs list it (and only it); a
  pipelined instance's stages are TP groups on distinct nodes;
- every instance moves only along its lifecycle (starting -> loading -> initialising -> active ->
  draining -> stopped; or active from time 0);
- KV blocks are conserved: an engine's used blocks are the sum of its running sequences' blocks,
  its free blocks are never negative, and the KV bytes it holds on each of its GPUs equal its blocks
  not lent to the pool; with prefix caching (:func:`warmsim.sim.prefix_cache.audit`) a shared block
  counts once, every block's references equal the running sequences holding it, the evictor holds
  exactly the computed blocks nobody holds, and used + cached + lent blocks fit the engine;
- every request ends exactly once, completed (first token and finish at or after its arrival) or
  dropped with a reason, and no request is queued in two places.

A violation stops the run with one :class:`InvariantViolation` naming the time, and the GPU,
instance and request involved.
"""

from __future__ import annotations

from collections import Counter

from warmsim.sim.memory import KV
from warmsim.sim.recorder import COMPLETED, DROPPED, PENDING
from warmsim.sim.types import ACTIVE, DRAINING, INITIALISING, LOADING, STARTING, STOPPED

#: Every this many events the checker also scans the queues (a request queued in two places).
QUEUE_SCAN_EVERY = 256

#: Legal lifecycle transitions (from -> allowed next states).
TRANSITIONS: dict[str, frozenset[str]] = {
    STARTING: frozenset({LOADING}),
    LOADING: frozenset({INITIALISING}),
    INITIALISING: frozenset({ACTIVE}),
    ACTIVE: frozenset({DRAINING}),
    DRAINING: frozenset({STOPPED}),
    STOPPED: frozenset(),
}


class InvariantViolation(RuntimeError):
    """The simulation reached a state its model forbids (a bug in the simulator or a policy)."""


class InvariantChecker:
    """Checks one :class:`warmsim.sim.simulation.Simulation`; :meth:`install` hooks it in before the run."""

    def __init__(self, sim):
        self.sim = sim
        self.now = sim.env.now  # the run may start before 0 (a prewarm lead)
        self.dirty_gpus: set[int] = set()
        self.dirty_instances: set[int] = set()
        self.events = 0

    # ---- hooks ----------------------------------------------------------------------------------
    def install(self) -> None:
        """Wrap the event loop, memory changes, lifecycle changes and request endings."""
        sim = self.sim
        env_step = sim.env.step

        def step() -> None:
            env_step()
            self.after_event()

        sim.env.step = step
        for g in sim.cluster.gpus:
            self._watch_memory(g.mem)
        state = sim.state
        state_changed = state.state_changed

        def on_state(inst, old: str, new: str) -> None:
            lost = new == STOPPED and getattr(inst, "failed", False)  # a fault may stop it from any state
            if new != old and not lost and new not in TRANSITIONS.get(old, frozenset()):
                self.fail(f"instance {inst.id} ({inst.model.name}) went from {old} to {new}", instance=inst.id,
                          gpus=inst.gpus)
            state_changed(inst, old, new)
            self.dirty_instances.add(inst.id)

        state.state_changed = sim.state_changed = on_state
        instance_changed = state.instance_changed

        def on_instance(inst) -> None:
            instance_changed(inst)
            self.dirty_instances.add(inst.id)

        state.instance_changed = sim.instance_changed = on_instance
        rec = sim.recorder
        complete = rec.complete

        def on_complete(rid: int, t: float) -> None:
            if rec.status[rid] != PENDING:
                self.fail(f"request {rid} completed again (it had already ended)", request=rid)
            complete(rid, t)

        rec.complete = on_complete

    def _watch_memory(self, mem) -> None:
        inner = mem.on_change

        def on_change(m) -> None:
            if inner is not None:
                inner(m)
            self.dirty_gpus.add(m.gpu)

        mem.on_change = on_change

    # ---- checks ---------------------------------------------------------------------------------
    def fail(self, what: str, gpu: int | None = None, instance: int | None = None, request: int | None = None,
             gpus: tuple[int, ...] | None = None) -> None:
        where = []
        if gpu is not None:
            where.append(f"GPU {gpu}")
        if gpus is not None:
            where.append(f"GPUs {list(gpus)}")
        if instance is not None:
            where.append(f"instance {instance}")
        if request is not None:
            where.append(f"request {request}")
        at = f" ({', '.join(where)})" if where else ""
        raise InvariantViolation(f"invariant violated at t={self.sim.env.now:.6f} s{at}: {what}")

    def after_event(self) -> None:
        """The checks for what the last event may have changed."""
        sim = self.sim
        self.events += 1
        if sim.env.now < self.now:
            self.fail(f"the clock went back from {self.now} to {sim.env.now}")
        self.now = sim.env.now
        if self.events % QUEUE_SCAN_EVERY == 0:
            self.check_queues()
        if self.dirty_gpus:
            gpus, self.dirty_gpus = self.dirty_gpus, set()
            for g in sorted(gpus):
                self.check_gpu(g)
        if self.dirty_instances:
            ids, self.dirty_instances = self.dirty_instances, set()
            for i in sorted(ids):
                inst = sim.instances.get(i)
                if inst is not None:
                    self.check_instance(inst)
                    for g in inst.gpus:
                        self.check_gpu(g)

    def check_gpu(self, g: int) -> None:
        sim = self.sim
        gpu = sim.cluster.gpus[g]
        mem = gpu.mem
        if mem.used > mem.capacity:
            self.fail(f"memory over-committed: {mem.used} of {mem.capacity} chunks", gpu=g)
        if sum(mem.held.values()) != mem.used or any(c <= 0 for c in mem.held.values()):
            self.fail("memory accounts do not add up (owners vs used)", gpu=g)
        by_kind: Counter[str] = Counter()
        for (kind, _), c in mem.held.items():
            by_kind[kind] += c
        if any(by_kind.get(k, 0) != v for k, v in mem.by_kind.items()) or any(
                mem.by_kind.get(k, 0) != v for k, v in by_kind.items()):
            self.fail("per-kind memory accounts do not add up", gpu=g)
        here = [sim.instances[i] for i in gpu.instances if i in sim.instances]
        if len(here) != len(gpu.instances):
            self.fail(f"lists instances {sorted(set(gpu.instances) - set(sim.instances))} that do not exist", gpu=g)
        dedicated = [i for i in here if i.compute_share >= 1.0]
        if dedicated and len(here) > 1:
            self.fail(f"dedicated instance {dedicated[0].id} shares the GPU with {sorted(i.id for i in here)}",
                      gpu=g, instance=dedicated[0].id)
        if sum(i.compute_share for i in here) > 1.0 + 1e-9:
            self.fail(f"compute shares sum to {sum(i.compute_share for i in here):.6f}", gpu=g)
        for i in here:
            if g not in i.gpus:
                self.fail(f"lists instance {i.id}, whose GPUs are {list(i.gpus)}", gpu=g, instance=i.id)

    def check_instance(self, inst) -> None:
        sim = self.sim
        for g in inst.gpus:
            if inst.id not in sim.cluster.gpus[g].instances:
                self.fail("its GPU does not list it", gpu=g, instance=inst.id)
        groups = getattr(inst, "groups", (inst.gpus,))  # a pipeline: one TP group per stage, each on its own node
        nodes = [{sim.cluster.gpus[g].node for g in grp} for grp in groups]
        if any(len(n) != 1 for n in nodes):
            self.fail("its TP group spans nodes", instance=inst.id, gpus=inst.gpus)
        if len({min(n) for n in nodes}) != len(groups) or sorted(g for grp in groups for g in grp) != sorted(inst.gpus):
            self.fail(f"its pipeline stages {list(groups)} share a node or are not its GPUs", instance=inst.id,
                      gpus=inst.gpus)
        e = inst.engine
        if getattr(e, "cache", None) is not None:  # prefix caching: shared blocks, cached blocks
            from warmsim.sim.prefix_cache import audit
            problem = audit(e)
            if problem:
                self.fail(problem, instance=inst.id, gpus=inst.gpus)
        else:
            held = sum(s.blocks for s in e.running)
            if e.used_blocks != held:
                self.fail(f"engine uses {e.used_blocks} KV blocks but its running sequences hold {held}",
                          instance=inst.id, gpus=inst.gpus)
        if e.reserved < 0 or e.free_blocks < 0:
            self.fail(f"KV blocks out of range: total {e.total_blocks}, lent {e.reserved}, used {e.used_blocks}",
                      instance=inst.id, gpus=inst.gpus)
        if inst.state != STOPPED:
            want = (e.total_blocks - e.reserved) * inst.block_bytes
            for g in getattr(inst, "kv_gpus", inst.gpus):  # a pipeline's engine counts its first stage's KV
                have = sim.cluster.gpus[g].mem.bytes_of(KV, inst.id)
                if have < want:
                    self.fail(f"holds {have} B of KV but its engine counts {want} B of blocks", gpu=g,
                              instance=inst.id)

    def finish(self) -> None:
        """At the end of the run: every request ended exactly once, with a reason if dropped."""
        rec = self.sim.recorder
        w = self.sim.workload
        status = rec.status
        if (status == PENDING).any():
            rid = int((status == PENDING).argmax())
            self.fail("request never ended", request=rid)
        if rec.done != len(w):
            self.fail(f"{rec.done} request endings recorded for {len(w)} requests")
        for rid in (status == DROPPED).nonzero()[0]:
            if rec.drop_code[rid] == 0:
                self.fail("dropped without a reason", request=int(rid))
        done = (status == COMPLETED).nonzero()[0]
        bad = done[(rec.first_token[done] < w.arrival_s[done] - 1e-9) | (rec.finish[done] < rec.first_token[done] - 1e-9)]
        if len(bad):
            rid = int(bad[0])
            self.fail(f"times out of order: arrival {w.arrival_s[rid]}, first token {rec.first_token[rid]}, "
                      f"finish {rec.finish[rid]}", request=rid)

    def check_queues(self) -> None:
        """No request is queued in two places, and none that has ended is queued at all."""
        seen: dict[int, str] = {}
        for m, q in self.sim.requests.held.items():
            for rid in q:
                self._once(seen, int(rid), f"held for {m}")
        for inst in self.sim.instances.values():
            for rid in inst.pending:
                self._once(seen, rid, f"pending at instance {inst.id}")
            for s in list(inst.engine.waiting) + list(inst.engine.running):
                self._once(seen, s.rid, f"in instance {inst.id}'s engine")

    def _once(self, seen: dict[int, str], rid: int, where: str) -> None:
        if rid in seen:
            self.fail(f"queued twice: {seen[rid]} and {where}", request=rid)
        seen[rid] = where
        if self.sim.recorder.status[rid] != PENDING:
            self.fail(f"ended but still {where}", request=rid)
