"""One run: a workload replayed on a cluster under one system (policy bundle).

:class:`Simulation` is the wiring: it owns the clock, the cluster and the recorder, keeps the
instances, replicas and ids in one :class:`~warmsim.sim.state.SimState` (whose mutating methods tell
the views, the load tracker and KV lending of each change), and hands the work to one component per
seam, each in its own module and each given only the collaborators it uses
(:mod:`warmsim.sim.collaborators`):

- :mod:`warmsim.sim.views`: the snapshot a policy sees, kept incrementally;
- :mod:`warmsim.sim.load`: per-model load (in-flight, window averages and peaks, instance counts);
- :mod:`warmsim.sim.requests`: arrivals, routing, held queues, retries, how each request ends;
- :mod:`warmsim.sim.activation`: instance starts (plans verified and applied), stops, the autoscaler loop;
- :mod:`warmsim.sim.weights`: weight loads through the flow network and prewarmed replicas, placement;
- :mod:`warmsim.sim.kv_lending`: KV blocks lent to the GPU pool and reclaimed.

Instances and engines reach the run only through :class:`warmsim.sim.instance.InstanceHost` /
:class:`warmsim.sim.protocols.EngineHost`, which this class implements; serving mechanisms, faults and
the invariant checker are handed the whole simulation. Policies are called at their decision points
with a fresh :class:`~warmsim.sim.types.Snapshot`; every plan is verified before it is applied
(:class:`~warmsim.sim.errors.PlanError` otherwise).

Same-time event order (SimPy breaks ties by scheduling order): arrivals are scheduled first at
start-up, so at equal times an arrival precedes a control tick scheduled later; control loops
(autoscaler, placer, retry, KV reservation, predictor windows) each run as their own process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from warmsim.sim.activation import Activations
from warmsim.sim.bundle import Bundle
from warmsim.sim.cluster import Cluster, ClusterSpec
from warmsim.sim.cost import CostModel
from warmsim.sim.engine import EngineSpec
from warmsim.sim.errors import UserError
from warmsim.sim.instance import Instance
from warmsim.sim.kv_lending import KVLending
from warmsim.sim.load import LoadTracker
from warmsim.sim.mechanisms import Mechanism, build_mechanisms
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.sim.models import ServedModel
from warmsim.sim.recorder import PENDING, Recorder
from warmsim.sim.replica import Replica
from warmsim.sim.requests import Requests
from warmsim.sim.state import SimState
from warmsim.sim.types import Activate, Prewarm, SleeperView, Snapshot
from warmsim.sim.views import SnapshotViews
from warmsim.sim.weights import Weights

#: Environment variable that turns the invariant checker on in every run (the test suite sets it);
#: ``sim.check_invariants=true`` does the same for one run.
CHECK_ENV = "WARMSIM_CHECK_INVARIANTS"


@dataclass(frozen=True)
class SimSpec:
    """Run-level knobs."""

    retry_s: float = 1.0  # requests held at the router re-check this often
    request_timeout_s: float = 600.0  # a request held at the router longer than this is dropped
    drain_s: float = 600.0  # after the workload ends, unfinished requests get this long, then drop
    load_window_s: float = 5.0  # the autoscaler's averaging window of in-flight load
    service_estimate_batch: int = 16  # batch assumed when turning history into in-flight load
    check_invariants: bool = False  # run sim.invariants.InvariantChecker inside the run (slower; for debugging)
    faults: tuple = ()  # sim.faults.Fault events of the run, by time
    on_failure: str = "retry"  # requests a lost instance held: retry (back to the router) | drop
    #: Seconds the system runs before the first request may arrive (the clock starts at minus this):
    #: its placer and loops act, nothing arrives, and no GPU-time is counted.
    prewarm_lead_s: float = 0.0


class Simulation:
    """Replay ``workload`` on ``cluster_spec`` under ``bundle``; :meth:`run` returns the recorder."""

    def __init__(self, workload, models: dict[str, ServedModel], cluster_spec: ClusterSpec, cost: CostModel,
                 bundle: Bundle, engine_spec: EngineSpec = EngineSpec(), spec: SimSpec = SimSpec(),
                 progress=None):
        self.env = simpy.Environment(initial_time=-float(spec.prewarm_lead_s) if spec.prewarm_lead_s else 0.0)
        self.workload = workload
        self.models = models
        self.order = list(workload.models)
        self.cost = cost
        self.bundle = bundle
        self.engine_spec = engine_spec
        self.spec = spec
        self.progress = progress
        if bundle.memswitch not in MEMSWITCHES:
            raise UserError(f"system {bundle.name}: unknown memswitch {bundle.memswitch!r} "
                            f"(known: {', '.join(MEMSWITCHES)})")
        self.memswitch = MEMSWITCHES[bundle.memswitch]
        self.start_path = bundle.start_path
        self.recorder = rec = Recorder(workload)
        self.state = state = SimState(self.order)
        self.instances, self.replicas = state.instances, state.replicas  # (the same dicts, for mechanisms)
        self.requests = Requests(self.env, workload, models, self.order, state, rec, bundle.router,
                                 bundle.scale_on_miss, spec.retry_s, spec.request_timeout_s, progress)
        self.load = LoadTracker(self.env, self.order, spec.load_window_s, self.requests.held)
        self.views = SnapshotViews(self.env, state, models, self.order, rec, self.load, cluster_spec.n_gpus,
                                   bool(bundle.meta.get("needs_node_pending", False)))
        self.cluster = Cluster(self.env, cluster_spec, self.views.on_mem_change)
        self.views.bind_cluster(self.cluster)
        if cluster_spec.host_cache_preload:
            for node in self.cluster.nodes:
                for m in self.order:
                    node.host_cache.touch(m, models[m].weight_bytes)
        self.weights = Weights(self.env, state, self.cluster, models, self.order, cost, rec, bundle, self.load,
                               self.views)
        self.kv = KVLending(self.env, state, self.cluster, bundle.kv_policy, self.weights)
        state.listen(self.cluster.gpus, self.views, self.load, self.kv)
        mechanisms: list[Mechanism] = []
        self.activations = Activations(self, state, models, self.order, bundle, self.load, self.weights,
                                       self.requests, self.views, mechanisms)
        self.requests.bind(self.load, self.activations)
        self.kv_dirty = self.kv.dirty
        # The engines' per-request callbacks, bound once (they run for every request).
        self.on_first_token = self.requests.on_first_token
        self.on_complete = self.requests.on_complete
        self.on_drop = self.requests.on_drop
        self.on_preempt = self.requests.on_preempt
        self.on_prefix_hit = rec.prefix_hit  # engines with prefix caching only
        self.step_rows = rec.steps  # engines recording steps only (engine.record_steps)
        # Hooks a serving mechanism may take over (sim/mechanisms: kv_balloon replaces both).
        self.step_slowdown = self.activations.step_slowdown  # per prefill step and decode run
        self.reclaim_kv = self.kv.reclaim  # an engine short of KV blocks takes lent ones back
        # Changes an instance or its engine announces (the invariant checker wraps them).
        self.instance_changed = state.instance_changed
        self.state_changed = state.state_changed
        # Serving mechanisms beyond the start path (sim/mechanisms: sleep, pipeline, kv_balloon), last:
        # each may take over hooks above (reclaim_kv, step_slowdown) or the state's asleep_views.
        mechanisms.extend(build_mechanisms(self, bundle.extras))
        self.mechanisms = mechanisms

    # ---- ids, snapshot, plans (the policies' side) ---------------------------------------------------
    def new_id(self) -> int:
        """A fresh instance, replica or sleeper id (:meth:`warmsim.sim.state.SimState.new_id`)."""
        return self.state.new_id()

    def snapshot(self) -> Snapshot:
        """A read-only picture of the cluster for a policy (:meth:`warmsim.sim.views.SnapshotViews.snapshot`)."""
        return self.views.snapshot()

    def apply_activate(self, act: Activate, ready_at_start: bool = False) -> Instance:
        """Verify and apply an activation (:meth:`warmsim.sim.activation.Activations.apply_activate`)."""
        return self.activations.apply_activate(act, ready_at_start)

    def apply_prewarm(self, p: Prewarm) -> None:
        """Verify and apply a prewarm (:meth:`warmsim.sim.weights.Weights.apply_prewarm`)."""
        self.weights.apply_prewarm(p)

    def evict(self, rid: int, why: str = "") -> int:
        """Drop replica ``rid``; returns the bytes freed per GPU."""
        return self.weights.evict(rid, why)

    def try_start(self, model: str) -> bool:
        """Ask the activator for an instance of ``model`` (:meth:`warmsim.sim.activation.Activations.try_start`)."""
        return self.activations.try_start(model)

    # ---- the instances' side (sim.instance.InstanceHost) -------------------------------------------
    def record_instance(self, inst: Instance) -> None:
        """Log ``inst``'s state now in the timeline."""
        self.recorder.event(self.env.now, "instance", inst.id, inst.model.name, inst.gpus, inst.state,
                            inst.source)

    def load_weights(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, background=False,
                     replica: Replica | None = None, peer: Instance | None = None):
        """Move ``model``'s shards onto ``gpus`` (:meth:`warmsim.sim.weights.Weights.load_weights`)."""
        return self.weights.load_weights(model, gpus, source, tag, background, replica, peer)

    def adopt_replica(self, inst: Instance) -> None:
        """``inst`` takes its replica's weights over."""
        self.weights.adopt_replica(inst)

    def on_instance_active(self, inst: Instance) -> None:
        """``inst`` serves now."""
        self.activations.on_active(inst)

    def on_instance_draining(self, inst: Instance) -> None:
        """``inst`` drains (its weights may be kept as a replica)."""
        self.weights.keep_on_drain(inst)

    def on_instance_stopped(self, inst: Instance) -> None:
        """``inst``'s engine stopped (a mechanism may take the stop over)."""
        for mech in self.mechanisms:
            if mech.on_stopped(inst):  # e.g. the engine falls asleep instead (sim/mechanisms/sleep.py)
                return
        self.activations.on_stopped(inst)

    def mechanism_lines(self) -> list[str]:
        """What each serving mechanism did in the run, one line each, for the report."""
        return [line for mech in self.mechanisms for line in mech.lines()]

    @property
    def asleep_views(self) -> Callable[[], tuple[SleeperView, ...]]:
        """The hook that shows suspended engines to policies (it lives in the state:
        :attr:`warmsim.sim.state.SimState.asleep_views`; a mechanism may set it here or there)."""
        return self.state.asleep_views

    @asleep_views.setter
    def asleep_views(self, hook: Callable[[], tuple[SleeperView, ...]]) -> None:
        self.state.asleep_views = hook

    @property
    def initial_lines(self) -> list[str]:
        """The instances placed at time 0, one line each, for the report."""
        return self.activations.initial_lines

    # ---- run ------------------------------------------------------------------------------------
    def run(self) -> Recorder:
        """Replay the whole workload; every request ends completed or dropped with a reason."""
        env = self.env
        b = self.bundle
        self.activations.initial()
        for inst in list(self.instances.values()):
            self.record_instance(inst)
        self.requests.start_arrivals()
        env.process(self.requests.retry_loop())
        if b.autoscaler is not None:
            env.process(self.activations.control_loop())
        env.process(self._sample_loop())
        if b.predictor is not None:
            env.process(self.load.window_loop(b.predictor, self.recorder.prediction_log))
        if b.placer is not None:
            env.process(self.weights.placer_loop())
        if b.kv_policy is not None:
            env.process(self.kv.loop())
        for mech in self.mechanisms:
            mech.start()
        checker = None
        if self.spec.check_invariants or os.environ.get(CHECK_ENV, "") not in ("", "0"):
            from warmsim.sim.invariants import InvariantChecker
            checker = InvariantChecker(self)
            checker.install()
        if self.spec.faults:
            from warmsim.sim.faults import Faults
            env.process(Faults(self, tuple(self.spec.faults), self.spec.on_failure).run())
        horizon = self.workload.duration_s + self.spec.drain_s
        if len(self.workload) == 0:
            self.requests.arrivals_done = True
        else:
            env.run(until=env.any_of([self.requests.finished, env.timeout(horizon - env.now)]))
        rec = self.recorder
        rec.end_s = env.now
        rec.events = next(env._eid)  # events SimPy scheduled in the run (its event-id counter)
        for rid in np.flatnonzero(rec.status == PENDING):
            self.on_drop(int(rid), "unfinished_at_end")
        self.load.close(env.now)
        rec.gpu_seconds = self.load.gpu_busy_area
        if checker is not None:
            checker.finish()
        return rec

    def _sample_loop(self):
        while True:
            yield self.env.timeout(self.spec.load_window_s / 10)
            self.load.sample()
