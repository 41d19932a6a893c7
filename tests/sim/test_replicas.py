"""Prewarmed replicas: background loads, adoption by an activation, kept weights, eviction rules."""

import pytest

from tests.sim.helpers import cluster, cost, model, workload
from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.ondemand import FirstFitActivator
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.sllm import SllmRouter
from warmsim.policies.types import Activate, Prewarm
from warmsim.sim.errors import PlanError
from warmsim.sim.memory import PREWARM, WEIGHTS
from warmsim.sim.simulation import Simulation

US = 1e-6


def bundle(**kw):
    kw.setdefault("activator", FirstFitActivator())
    return Bundle("t", LeastLoadedRouter(32), NoAutoscaler(), **kw)


def test_request_held_at_the_router_during_a_cold_start_is_labelled_cold():
    # SLLM's router only routes to active instances: the request waits at the router, not at the
    # instance, yet its TTFT includes the cold start and it must say so.
    b = Bundle("t", SllmRouter(max_queue_length=32), NoAutoscaler(), FirstFitActivator())
    s = Simulation(workload([0.0], [10], [1]), {"a": model()}, cluster(), cost(process_start=2.0), b)
    req = s.run().requests_table()
    assert req.start_kind[0] == "cold" and req.ttft_s[0] > 2.0


def test_prewarm_loads_in_the_background_and_a_hit_adopts_it():
    # A hit skips the process start (device prewarm) and the load, and still pays the rest of its
    # start: engine init 5 s (no profiling forward here).
    c = cost(process_start=5.0, engine_init=5.0, bandwidth=10e9)
    s = Simulation(workload([100.0], [10], [1]), {"a": model()}, cluster(gpus=2), c,
                   bundle(device_prewarm=True, engine_prewarm=True, profile_run=False))
    s.apply_prewarm(Prewarm("a", (1,)))
    rep = next(iter(s.replicas.values()))
    s.env.run(until=1.0)
    assert not rep.ready.triggered and s.cluster.gpus[1].mem.bytes_of(PREWARM, rep.id) == model().shard_bytes
    s.env.run(until=model().shard_bytes / 10e9 + US)
    assert rep.ready.triggered
    inst = s.apply_activate(Activate("a", (1,), source="prewarmed", replica=rep.id))
    with pytest.raises(PlanError, match="being taken over"):
        s.evict(rep.id)
    t_act = s.env.now
    s.env.run(until=t_act + 5.0 - US)
    assert inst.state == "initialising" and rep.id not in s.replicas
    s.env.run(until=t_act + 5.0 + US)
    assert inst.state == "active"
    assert s.cluster.gpus[1].mem.bytes_of(WEIGHTS, inst.id) == model().shard_bytes
    assert s.recorder.counters["a"]["prewarm_hits"] == 1 and s.recorder.counters["a"]["cold_starts"] == 0


def test_activation_evicts_exactly_the_overlapping_replicas():
    s = Simulation(workload([100.0], [10], [1], models=("a", "b"), model_idx=[0]),
                   {"a": model("a"), "b": model("b")}, cluster(gpus=2), cost(), bundle())
    s.apply_prewarm(Prewarm("b", (0,)))
    s.apply_prewarm(Prewarm("b", (1,)))
    s.env.run(until=10.0)
    s.apply_activate(Activate("a", (0,)))
    left = [(r.model.name, r.gpus) for r in s.replicas.values()]
    assert left == [("b", (1,))] and s.recorder.counters["b"]["evictions"] == 1


def test_draining_instance_announces_its_kept_weights_at_once():
    s = Simulation(workload([100.0], [10], [1]), {"a": model()}, cluster(gpus=1), cost(),
                   bundle(keep_weights_on_stop=True))
    inst = s.apply_activate(Activate("a", (0,)), ready_at_start=True)
    s.env.run(until=1.0)
    inst.drain()
    reps = s.snapshot().replicas
    assert [(r.model, r.gpus, r.ready) for r in reps] == [("a", (0,), False)]
    assert 0 in s.snapshot().busy_gpus()  # the draining instance still holds the GPU
    s.env.run(until=2.0)
    rep = next(iter(s.replicas.values()))
    assert rep.ready.triggered and s.cluster.gpus[0].mem.bytes_of(PREWARM, rep.id) == model().shard_bytes
    assert s.cluster.gpus[0].mem.bytes_of(WEIGHTS, inst.id) == 0
