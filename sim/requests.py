"""Request lifecycle and routing: arrivals, the router's held queues, retries and time-outs, and
the end of every request (first token, completion, drop, preemption), reported to the recorder.

It owns the held queues (requests no instance could take yet), whether all arrivals are in, and
the event that fires when every request has ended.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from simpy.core import URGENT
from simpy.events import Timeout

from warmsim.sim.errors import PlanError
from warmsim.sim.recorder import PENDING
from warmsim.sim.types import LIVE_STATES

if TYPE_CHECKING:
    from warmsim.sim.simulation import Simulation


class Requests:
    """Routes the workload's requests to instances and records how each one ends."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.held: dict[str, deque] = {m: deque() for m in sim.order}
        self.max_len = {m: sim.models[m].shape.max_model_len for m in sim.order}
        self.arrivals_done = False
        self._next_rid = 0  # the first request not yet arrived
        self.finished = sim.env.event()

    # ---- how requests end (callbacks from engines) -------------------------------------------------
    def on_first_token(self, rid: int, t: float) -> None:
        self.sim.recorder.first(rid, t)

    def on_complete(self, rid: int, t: float) -> None:
        sim = self.sim
        sim.recorder.complete(rid, t)
        sim.load.bump(sim.order[sim.workload.model.item(rid)], -1)
        self.check_finished()

    def on_drop(self, rid: int, reason: str) -> None:
        sim = self.sim
        if sim.recorder.status[rid] != PENDING:
            return
        sim.recorder.drop(rid, sim.env.now, reason)
        sim.load.bump(sim.order[sim.workload.model.item(rid)], -1)
        self.check_finished()

    def on_preempt(self, rid: int) -> None:
        self.sim.recorder.preemptions[rid] += 1

    def check_finished(self) -> None:
        if self.arrivals_done and self.sim.recorder.done == len(self.sim.workload) and not self.finished.triggered:
            self.finished.succeed()

    # ---- routing --------------------------------------------------------------------------------
    def views(self, model: str):
        """The router's view of ``model``: its live instances, in creation order."""
        return [i.view() for i in self.sim.by_model[model].values() if i.state in LIVE_STATES]

    def route(self, rid: int, model: str) -> bool:
        sim = self.sim
        iid = sim.bundle.router.route(model, self.views(model))
        if iid is None:
            return False
        inst = sim.instances.get(iid)
        if inst is None or inst.model.name != model or inst.state not in LIVE_STATES:
            raise PlanError(f"router sent a {model} request to instance {iid}, which cannot take it")
        inst.submit(rid)
        return True

    def route_held(self, model: str) -> None:
        q = self.held[model]
        while q and self.route(q[0], model):
            q.popleft()

    def start_arrivals(self) -> None:
        """Start the arrivals: each request at its time, to an instance or to the held queue (which
        may start an instance when the system scales on a miss). A chain of timers, one per distinct
        arrival time, each handling every request due then; the first fires at time 0 before any
        event due then (like a process's start), also when the run began earlier (a prewarm lead)."""
        env = self.sim.env
        # Triggered and scheduled URGENT by hand, as SimPy starts a process (``Event.succeed`` would
        # schedule it NORMAL, after events already due at time 0).
        ev = env.event()
        ev._ok, ev._value = True, None
        ev.callbacks.append(self._arrive)
        env.schedule(ev, URGENT, max(0.0, -env.now))

    def _arrive(self, _ev) -> None:
        sim = self.sim
        w = sim.workload
        env = sim.env
        now = env.now
        order, held, bump = sim.order, self.held, sim.load.bump
        scale_on_miss = sim.bundle.scale_on_miss
        pending_start = sim.load.pending_start
        # ``.item``: Python numbers, not numpy scalars (a numpy time would become the clock and slow
        # every comparison in SimPy's event heap and every time computed from it).
        arrival, model_ix = w.arrival_s.item, w.model.item
        prompt, output = w.prompt_tokens.item, w.output_tokens.item
        total = len(w)
        rid = self._next_rid
        while rid < total:
            t = arrival(rid)
            if t > now:
                self._next_rid = rid
                Timeout(env, t - now).callbacks.append(self._arrive)
                return
            model = order[model_ix(rid)]
            bump(model, +1)
            if prompt(rid) + output(rid) > self.max_len[model]:
                self.on_drop(rid, "exceeds_max_model_len")
            elif held[model] or not self.route(rid, model):
                held[model].append(rid)
                if scale_on_miss and pending_start[model] == 0:
                    sim.try_start(model)
                    self.route_held(model)
            if sim.progress is not None and rid % 1000 == 0:
                sim.progress(rid)
            rid += 1
        self._next_rid = rid
        self.arrivals_done = True
        self.check_finished()

    def retry_loop(self):
        """Every ``retry_s``: drop held requests past their time-out, route the rest, and start an
        instance for a model still waiting when the system scales on a miss."""
        sim = self.sim
        spec = sim.spec
        while True:
            yield sim.env.timeout(spec.retry_s)
            now = sim.env.now
            for m in sim.order:
                q = self.held[m]
                if not q:
                    continue
                while q and now - sim.workload.arrival_s[q[0]] > spec.request_timeout_s:
                    self.on_drop(q.popleft(), "timeout_waiting_for_instance")
                if q:
                    self.route_held(m)
                    if q and sim.bundle.scale_on_miss and sim.load.pending_start[m] == 0:
                        sim.try_start(m)
                        self.route_held(m)
