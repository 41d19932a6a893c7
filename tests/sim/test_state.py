"""SimState announces every change it makes: the views, the load tracker and KV lending hear of each
one, in a tiny hand-built run (two GPUs, one instance, one replica) with recording listeners."""

from __future__ import annotations

from types import SimpleNamespace

import simpy

from warmsim.sim.replica import Replica
from warmsim.sim.state import SimState


class Views:
    def __init__(self):
        self.inst_dirty: set[int] = set()
        self.heard: list[tuple] = []

    def gpu_changed(self, g):
        self.heard.append(("gpu", g))

    def instance_added(self, inst):
        self.heard.append(("added", inst.id))

    def instance_removed(self, inst):
        self.heard.append(("removed", inst.id))

    def replicas_changed(self):
        self.heard.append(("replicas",))


class Load:
    def __init__(self):
        self.heard: list[tuple] = []

    def instance_added(self, model):
        self.heard.append(("added", model))

    def state_changed(self, model, old, new):
        self.heard.append(("state", model, old, new))

    def gpu_busy_delta(self, delta):
        self.heard.append(("busy", delta))


def setup():
    gpus = [SimpleNamespace(instances=set(), replicas=set()) for _ in range(2)]
    views, load, kv = Views(), Load(), SimpleNamespace(dirty=set())
    state = SimState(["a", "b"])
    state.listen(gpus, views, load, kv)
    return state, gpus, views, load, kv


def test_an_instance_added_changed_and_removed_is_announced_to_every_listener():
    state, gpus, views, load, kv = setup()
    inst = SimpleNamespace(id=state.new_id(), model=SimpleNamespace(name="a"), gpus=(0, 1))
    state.add_instance(inst)
    assert views.heard == [("gpu", 0), ("gpu", 1), ("added", 1)]
    assert load.heard == [("busy", 2), ("added", "a")]  # two GPUs were idle before it
    assert gpus[0].instances == gpus[1].instances == {1}
    assert state.instances == {1: inst} and state.by_model == {"a": {1: inst}, "b": {}}

    state.state_changed(inst, "starting", "loading")
    assert load.heard[-1] == ("state", "a", "starting", "loading")
    assert views.inst_dirty == kv.dirty == {1}  # its view and its engine's blocks are looked at again

    views.heard.clear()
    load.heard.clear()
    state.remove_instance(inst)
    assert views.heard == [("gpu", 0), ("gpu", 1), ("removed", 1)]
    assert load.heard == [("busy", -2)]
    assert gpus[0].instances == gpus[1].instances == set()
    assert state.instances == {} and state.by_model["a"] == {}


def test_a_gpu_shared_by_two_instances_counts_busy_once():
    state, gpus, views, load, kv = setup()
    for _ in range(2):
        state.add_instance(SimpleNamespace(id=state.new_id(), model=SimpleNamespace(name="b"), gpus=(1,)))
    assert [h for h in load.heard if h[0] == "busy"] == [("busy", 1), ("busy", 0)]


def test_replica_changes_reach_the_views_and_count_for_the_placer():
    state, gpus, views, load, kv = setup()
    env = simpy.Environment()
    rep = Replica(env, state.new_id(), SimpleNamespace(name="b"), (1,))
    state.add_replica(rep)
    state.replica_ready(rep)
    assert rep.ready.triggered
    state.remove_replica(rep)
    assert views.heard == [("gpu", 1), ("replicas",), ("replicas",), ("replicas",), ("gpu", 1)]
    assert state.replica_changes == 3
    assert gpus[1].replicas == set() and state.replicas == {}
    assert load.heard == [] and kv.dirty == set()  # replicas are not load, nor an engine's blocks


def test_ids_are_one_sequence_and_no_sleepers_by_default():
    state = SimState(["a"])
    assert [state.new_id() for _ in range(3)] == [1, 2, 3]
    assert state.asleep_views() == ()


def test_a_mechanism_may_set_the_asleep_views_hook_on_the_simulation_or_on_the_state():
    from tests.sim.helpers import cluster, cost, model, static, workload
    from warmsim.sim.simulation import Simulation
    from warmsim.sim.types import SleeperView

    s = Simulation(workload([0.0], [10], [2]), {"a": model()}, cluster(gpus=2), cost(), static({"a": 1}))
    view = SleeperView(7, "a", (1,), 1, 0.0)
    s.asleep_views = lambda: (view,)  # the recipe of docs/extending.md
    assert s.state.asleep_views() == (view,) and s.snapshot().asleep == (view,)
    s.state.asleep_views = lambda: ()
    assert s.snapshot().asleep == ()
