"""Router, autoscalers, static sizing and first-fit activation on hand-built snapshots."""

import pytest

from tests.policies.snapshots import inst, snap
from warmsim.policies.autoscale import NoAutoscaler, ThresholdAutoscaler
from warmsim.policies.ondemand import FirstFitActivator, KeepAliveAutoscaler
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.static import StaticPlacer, size_for_peak
from warmsim.policies.types import LoadView
from warmsim.sim.errors import UserError


def test_router_picks_least_loaded_and_respects_the_cap():
    insts = [inst(1, "a", [0], 5), inst(2, "a", [1], 3), inst(3, "a", [2], 3, state="loading")]
    assert LeastLoadedRouter().route("a", insts) == 2  # tie with 3: the active one wins
    assert LeastLoadedRouter(max_inflight=3).route("a", insts) is None
    assert LeastLoadedRouter(max_inflight=4).route("a", insts) == 2
    assert LeastLoadedRouter().route("a", [inst(4, "a", [0], 0, state="draining")]) is None


def test_threshold_autoscaler_scales_up_above_80_percent():
    s = snap(instances=[inst(1, "a", [0])], load={"a": LoadView(30, 30.0, 0, 1), "b": LoadView(0, 0, 0, 0)})
    # 30 > 0.8 * 32 -> ceil(30 / 0.8 / 32) = 2 instances, one more
    assert ThresholdAutoscaler().decide(s).start == {"a": 1}


def test_threshold_autoscaler_scales_down_below_50_percent_oldest_protected():
    insts = [inst(1, "a", [0], 2, created=0.0), inst(2, "a", [1], 1, created=0.0), inst(3, "a", [2], 0, created=98.0)]
    s = snap(instances=insts, load={"a": LoadView(3, 3.0, 0, 3), "b": LoadView(0, 0, 0, 0)})
    d = ThresholdAutoscaler().decide(s)
    # target ceil(3 / 0.5 / 32) = 1: two must go, chosen among instances older than 5 s (instance 3
    # is 2 s old), fewest requests first.
    assert d.stop == (2, 1)


def test_threshold_autoscaler_starts_a_first_instance_for_waiting_requests():
    s = snap(load={"a": LoadView(1, 0.0, 1, 0), "b": LoadView(0, 0, 0, 0)})
    assert ThresholdAutoscaler().decide(s).start == {"a": 1}
    assert NoAutoscaler().decide(s).start == {}


def test_keep_alive_releases_only_after_the_keep_alive():
    scaler = KeepAliveAutoscaler(keep_alive_s=10)
    idle = [inst(1, "a", [0], 0)]
    load = {"a": LoadView(0, 0.0, 0, 1), "b": LoadView(0, 0, 0, 0)}
    assert scaler.decide(snap(instances=idle, load=load, t=100)).stop == ()
    assert scaler.decide(snap(instances=idle, load=load, t=109)).stop == ()
    assert scaler.decide(snap(instances=idle, load=load, t=110)).stop == (1,)


def test_first_fit_uses_the_lowest_free_gpus_inside_one_node():
    s = snap(n_nodes=2, gpus_per_node=2, instances=[inst(1, "a", [0])])
    assert FirstFitActivator().choose(s, "b").gpus == (2, 3)  # node 0 has one free GPU only
    assert FirstFitActivator().choose(s, "a").gpus == (1,)
    full = snap(n_nodes=1, gpus_per_node=2, instances=[inst(1, "a", [0]), inst(2, "a", [1])])
    assert FirstFitActivator().choose(full, "a") is None


def test_static_places_largest_tp_first_and_refuses_what_cannot_fit():
    s = snap(n_nodes=1, gpus_per_node=4)
    plans = StaticPlacer({"a": 2, "b": 1}).place(s, {})
    assert [(p.model, p.gpus) for p in plans] == [("b", (0, 1)), ("a", (2,)), ("a", (3,))]
    with pytest.raises(UserError, match="needs 6 GPUs"):
        StaticPlacer({"a": 2, "b": 2}).place(s, {})


def test_size_for_peak_shrinks_proportionally_keeping_one_each():
    assert size_for_peak({"a": 100, "b": 10}, {"a": 1, "b": 2}, 32, 16) == {"a": 4, "b": 1}
    assert size_for_peak({"a": 1000, "b": 10}, {"a": 1, "b": 2}, 32, 6) == {"a": 4, "b": 1}
