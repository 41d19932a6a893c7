"""The simulator's speed-ups keep its results: cached snapshots equal ones built from scratch, the
incremental per-kind memory totals equal the sums, per-model instance lists equal a full scan, and
an evicted loading replica stops slowing its GPUs at once (not whenever the garbage collector runs)."""

import gc
import math

import pytest
from hydra import compose, initialize_config_dir

from tests.sim.helpers import cluster, cost, model, ondemand, workload
from warmsim.experiments.builder import CONF_DIR, build_bundle, build_setup, system_cluster, system_config
from warmsim.policies.types import (
    LIVE_STATES,
    STOPPED,
    GPUView,
    InstanceView,
    LoadView,
    ModelView,
    Prewarm,
    ReplicaView,
    Snapshot,
)
from warmsim.sim.memory import PREWARM
from warmsim.sim.models import CHUNK_BYTES
from warmsim.sim.simulation import Simulation


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, step: int) -> int:
    return _ceil_div(a, step) * step


SMALL = ["workload=synthetic", "workload.duration_s=240", "workload.total_rate=6", "workload.alpha=1.5",
         "workload.max_prompt_tokens=1024", "workload.max_output_tokens=512", "progress=false"]


def avg_inflight(sim, model, now):
    """The autoscaler's load signal from first principles: the in-flight integral over the window
    since the oldest kept load sample."""
    load = sim.load
    if not load.samples:
        return float(load.inflight[model])
    t0, areas = load.samples[0]
    if now - t0 <= 0:
        return float(load.inflight[model])
    return (load.area_now(model, now) - areas[model]) / (now - t0)


def reference_snapshot(sim: Simulation) -> Snapshot:
    """The snapshot as the simulator built it before any caching: everything rescanned."""
    now = sim.env.now
    gpus = tuple(GPUView(g.idx, g.node, g.mem.capacity_bytes, g.mem.used_bytes,
                         sum(c for (k, _), c in g.mem.held.items() if k == PREWARM) * CHUNK_BYTES,
                         tuple(sorted(g.instances)), tuple(sorted(g.replicas))) for g in sim.cluster.gpus)
    live: dict[str, int] = {}
    for i in sim.instances.values():
        if i.state in LIVE_STATES:
            live[i.model.name] = live.get(i.model.name, 0) + 1
    load = {m: LoadView(sim.load.inflight[m], avg_inflight(sim, m, now), len(sim.requests.held[m]), live.get(m, 0),
                        sim.load.pending_start[m]) for m in sim.order}
    models = {m: ModelView(m, s.shape.params * s.shape.dtype_bytes, s.tp,
                           _round_up(_ceil_div(s.shape.params * s.shape.dtype_bytes, s.tp), CHUNK_BYTES),
                           s.shape.kv_bytes_per_token) for m, s in sim.models.items()}
    pending = {}
    if sim.bundle.meta.get("needs_node_pending", False):
        pending = {n.idx: int(sim.cluster.net.bytes_pending(sim.cluster.node_links(n.idx))) for n in sim.cluster.nodes}
    return Snapshot(
        time_s=now, gpus_per_node=sim.cluster.spec.gpus_per_node, gpus=gpus, models=models,
        instances=tuple(InstanceView(i.id, i.model.name, i.gpus, i.state, i.inflight, i.created, i.compute_share,
                                     max_num_seqs=i.max_num_seqs)
                        for i in sim.instances.values() if i.state != STOPPED),
        replicas=tuple(ReplicaView(r.id, r.model.name, r.gpus, r.ready.triggered, r.model.shard_bytes)
                       for r in sim.replicas.values()),
        load=load, host_cache={n.idx: n.host_cache.models(sim.order) for n in sim.cluster.nodes},
        node_pending_load_bytes=pending, link_bandwidth=sim.cluster.spec.link_bandwidth())


class CheckedSimulation(Simulation):
    """Compares every snapshot (and routing view list) with a from-scratch one: the components ask
    the views for their snapshots, so the check wraps :meth:`SnapshotViews.snapshot`."""

    checks = 0

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        build = self.views.snapshot

        def checked() -> Snapshot:
            snap = build()
            assert snap == reference_snapshot(self), f"snapshot at t={self.env.now} differs from a rebuilt one"
            for g in self.cluster.gpus:
                for kind in ("weights", "kv", "prewarm"):
                    assert g.mem.kind_bytes(kind) == sum(c for (k, _), c in g.mem.held.items()
                                                         if k == kind) * CHUNK_BYTES
            for m in self.order:
                full = [i.view() for i in self.instances.values() if i.model.name == m and i.state in LIVE_STATES]
                assert self.requests.views(m) == full
            self.checks += 1
            return snap

        self.views.snapshot = checked  # type: ignore[method-assign]


def _run(system: str, checked: bool, overrides=()):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[*SMALL, *overrides])
        setup = build_setup(cfg)
        scfg = system_config(system)
        bundle = build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg)
    cls = CheckedSimulation if checked else Simulation
    sim = cls(setup.workload, setup.models, system_cluster(scfg, setup.cluster), setup.cost, bundle, setup.engine,
              setup.sim)
    return sim, sim.run()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("system", ["warmserve", "sllm", "ondemand", "muxserve"])
def test_cached_snapshots_equal_rebuilt_ones(system):
    sim, rec = _run(system, checked=True)
    assert sim.checks > 100
    assert rec.done == len(sim.workload)


@pytest.mark.filterwarnings("ignore")
def test_results_do_not_depend_on_the_garbage_collector():
    """Same config and seed: same requests table whether or not the cyclic GC ever runs."""
    base = _run("warmserve", checked=False)[1].requests_table()
    was = gc.isenabled()
    gc.disable()
    try:
        again = _run("warmserve", checked=False)[1].requests_table()
    finally:
        if was:
            gc.enable()
    assert base.equals(again)


def test_evicting_a_loading_replica_releases_its_copy_at_once():
    w = workload([100.0], [10], [5], models=("a",))
    sim = Simulation(w, {"a": model("a")}, cluster(gpus=2, bw=1e9), cost(), ondemand())
    sim.apply_prewarm(Prewarm("a", (1,), "host_pinned"))
    (rid,) = sim.replicas
    sim.env.run(until=1.0)  # ~13 GB over 1 GB/s: still loading
    assert not sim.replicas[rid].ready.triggered
    assert sim.cluster.gpus[1].background_flows == 1
    sim.evict(rid, "test")
    assert sim.cluster.gpus[1].background_flows == 0
    assert not sim.cluster.net.flows
    gc.collect()  # the stalled loader generator closes now; it must not release the copy twice
    assert sim.cluster.gpus[1].background_flows == 0


# ---- a demand-aware placer is asked again only when its declared inputs change --------------------

class CountingPlacer:
    """Wants one replica of ``a`` (on GPU 1) while an instance is live and there is no replica (so
    it reads only declared inputs); logs when it is asked and when it plans."""

    period_s = 0.5

    def __init__(self):
        self.asked, self.planned = [], []

    def wants_more(self, snap, predictions):
        self.asked.append(snap.time_s)
        return bool(snap.instances) and not snap.replicas

    def plan(self, snap, predictions):
        from warmsim.policies.types import Prewarm
        self.planned.append(snap.time_s)
        return [Prewarm("a", (1,))] if self.wants_more(snap, predictions) else []


def placer_run(placer, until=30.0):
    from dataclasses import replace as dc_replace

    w = workload([10.0], [10], [1], duration=until)
    b = dc_replace(ondemand(keep_alive_s=1000.0), placer=placer)
    s = Simulation(w, {"a": model()}, cluster(gpus=2), cost(), b)
    s.run()
    return s


def test_a_demand_aware_placer_is_asked_only_when_its_inputs_changed():
    p = CountingPlacer()
    s = placer_run(p)
    # 0.0: nothing live, nothing wanted. The request at 10 s (its timer was scheduled before the
    # placer's tick at 10 s) starts an instance: the live count changes, so at the 10.0 tick the
    # placer is asked, wants a replica, and plans it (asked again inside plan). The new replica
    # changes its inputs: asked at 10.5 (nothing wanted). Then the replica's load ends (a replica
    # change): asked once more at the next tick; after that nothing changes and it is never asked.
    ready = [t for t, kind, *_rest, state, _d in s.recorder.timeline if kind == "replica" and state == "ready"]
    assert len(ready) == 1
    next_tick = math.ceil(ready[0] / 0.5) * 0.5
    assert p.planned == [10.0]
    assert p.asked == [0.0, 10.0, 10.0, 10.5, next_tick]
