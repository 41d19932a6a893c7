"""Request lifecycle and routing: arrivals, the router's held queues, retries and time-outs, and
the end of every request (first token, completion, drop, preemption), reported to the recorder.

It owns the held queues (requests no instance could take yet), whether all arrivals are in, and
the event that fires when every request has ended. Its collaborators: the recorder, the load
tracker (requests in flight), the run's instances (:class:`~warmsim.sim.state.SimState`), the bundle's
router and a :class:`~warmsim.sim.collaborators.Starter` for a model still waiting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import simpy
from simpy.core import URGENT
from simpy.events import Timeout

from warmsim.sim.errors import PlanError
from warmsim.sim.models import ServedModel
from warmsim.sim.recorder import PENDING
from warmsim.sim.types import LIVE_STATES, InstanceView

if TYPE_CHECKING:
    from warmsim.sim.collaborators import Starter
    from warmsim.sim.load import LoadTracker
    from warmsim.sim.policy_protocols import Router
    from warmsim.sim.recorder import Recorder
    from warmsim.sim.state import SimState


class Requests:
    """Routes the workload's requests to instances and records how each one ends. The load tracker
    and the ``starter`` (instance starts on a miss) are bound once they exist (:meth:`bind`)."""

    def __init__(self, env: simpy.Environment, workload: Any, models: Mapping[str, ServedModel], order: Sequence[str],
                 state: SimState, recorder: Recorder, router: Router, scale_on_miss: bool, retry_s: float,
                 request_timeout_s: float, progress: Callable[[int], None] | None = None):
        self.env = env
        self.workload = workload
        self.order = order
        self.state = state
        self.recorder = recorder
        self.router = router
        self.scale_on_miss = scale_on_miss
        self.retry_s = retry_s  # held requests are looked at again this often
        self.request_timeout_s = request_timeout_s  # a request held longer than this is dropped
        self.progress = progress
        self.held: dict[str, deque] = {m: deque() for m in order}
        self.max_len = {m: models[m].shape.max_model_len for m in order}
        self.arrivals_done = False
        self._next_rid = 0  # the first request not yet arrived
        self.finished = env.event()

    def bind(self, load: LoadTracker, starter: Starter) -> None:
        """The load tracker (built on the held queues) and the activations (built on this object)."""
        self.load = load
        self.starter = starter

    # ---- how requests end (callbacks from engines) -------------------------------------------------
    def on_first_token(self, rid: int, t: float) -> None:
        """Request ``rid`` produced its first token at ``t``."""
        self.recorder.first(rid, t)

    def on_complete(self, rid: int, t: float) -> None:
        """Request ``rid`` finished at ``t``."""
        self.recorder.complete(rid, t)
        self.load.bump(self.order[self.workload.model.item(rid)], -1)
        self.check_finished()

    def on_drop(self, rid: int, reason: str) -> None:
        """Request ``rid`` is dropped now (once: a request already ended stays as it ended)."""
        rec = self.recorder
        if rec.status[rid] != PENDING:
            return
        rec.drop(rid, self.env.now, reason)
        self.load.bump(self.order[self.workload.model.item(rid)], -1)
        self.check_finished()

    def on_preempt(self, rid: int) -> None:
        """Request ``rid`` lost its KV blocks and will be recomputed."""
        self.recorder.preemptions[rid] += 1

    def check_finished(self) -> None:
        """Fire :attr:`finished` once every request has arrived and ended."""
        if self.arrivals_done and self.recorder.done == len(self.workload) and not self.finished.triggered:
            self.finished.succeed()

    # ---- routing --------------------------------------------------------------------------------
    def views(self, model: str) -> list[InstanceView]:
        """The router's view of ``model``: its live instances, in creation order."""
        return [i.view() for i in self.state.by_model[model].values() if i.state in LIVE_STATES]

    def route(self, rid: int, model: str) -> bool:
        """Hand request ``rid`` to the instance the router picks; False if it picks none."""
        iid = self.router.route(model, self.views(model))
        if iid is None:
            return False
        inst = self.state.instances.get(iid)
        if inst is None or inst.model.name != model or inst.state not in LIVE_STATES:
            raise PlanError(f"router sent a {model} request to instance {iid}, which cannot take it")
        inst.submit(rid)
        return True

    def route_held(self, model: str) -> None:
        """Route ``model``'s held requests, oldest first, while an instance takes them."""
        q = self.held[model]
        while q and self.route(q[0], model):
            q.popleft()

    def start_arrivals(self) -> None:
        """Start the arrivals: each request at its time, to an instance or to the held queue (which
        may start an instance when the system scales on a miss). A chain of timers, one per distinct
        arrival time, each handling every request due then; the first fires at time 0 before any
        event due then (like a process's start), also when the run began earlier (a prewarm lead)."""
        env = self.env
        # Triggered and scheduled URGENT by hand, as SimPy starts a process (``Event.succeed`` would
        # schedule it NORMAL, after events already due at time 0).
        ev = env.event()
        ev._ok, ev._value = True, None
        ev.callbacks.append(self._arrive)
        env.schedule(ev, URGENT, max(0.0, -env.now))

    def _arrive(self, _ev) -> None:
        w = self.workload
        env = self.env
        now = env.now
        order, held, bump = self.order, self.held, self.load.bump
        scale_on_miss = self.scale_on_miss
        pending_start = self.load.pending_start
        progress = self.progress
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
                    self.starter.try_start(model)
                    self.route_held(model)
            if progress is not None and rid % 1000 == 0:
                progress(rid)
            rid += 1
        self._next_rid = rid
        self.arrivals_done = True
        self.check_finished()

    def retry_loop(self):
        """Every ``retry_s``: drop held requests past their time-out, route the rest, and start an
        instance for a model still waiting when the system scales on a miss."""
        env, arrival, timeout = self.env, self.workload.arrival_s, self.request_timeout_s
        while True:
            yield env.timeout(self.retry_s)
            now = env.now
            for m in self.order:
                q = self.held[m]
                if not q:
                    continue
                while q and now - arrival[q[0]] > timeout:
                    self.on_drop(q.popleft(), "timeout_waiting_for_instance")
                if q:
                    self.route_held(m)
                    if q and self.scale_on_miss and self.load.pending_start[m] == 0:
                        self.starter.try_start(m)
                        self.route_held(m)
