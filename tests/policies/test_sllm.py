"""ServerlessLLM baseline: server choice, concurrency autoscaler with keep-alive, router, variants."""

from __future__ import annotations

import pytest

from warmsim.policies.sllm import SllmActivator, SllmAutoscaler, SllmRouter
from warmsim.policies.types import ACTIVE, LOADING, GPUView, InstanceView, LoadView, ModelView, Snapshot
from warmsim.sim.errors import UserError

GB = 10**9


def snap(*, nodes=2, gpn=2, tp=1, weight=10 * GB, host_cache=None, pending=None, busy=(),
         instances=(), load=None, time_s=0.0, links=None) -> Snapshot:
    """A small cluster serving model 'm' (and 'n', same shape)."""
    gpus = tuple(GPUView(id=i, node=i // gpn, capacity_bytes=80 * GB, used_bytes=0) for i in range(nodes * gpn))
    models = {name: ModelView(name, weight, tp, weight // tp) for name in ("m", "n")}
    insts = list(instances)
    for k, g in enumerate(busy):
        insts.append(InstanceView(id=1000 + k, model="n", gpus=(g,), state=ACTIVE, inflight=1, created_s=0.0))
    return Snapshot(time_s=time_s, gpus_per_node=gpn, gpus=gpus, models=models, instances=tuple(insts),
                    load=load or {}, host_cache=host_cache or {}, node_pending_load_bytes=pending or {},
                    link_bandwidth=links if links is not None else {"ssd_read": 5 * GB, "nic": 2 * GB})


# ---- activator -----------------------------------------------------------------------------------

def test_host_cache_node_beats_ssd_node():
    # node 0: SSD 10 GB / 5 GB/s = 2 s; node 1: host cache 10 GB / 25 GB/s = 0.4 s
    a = SllmActivator().choose(snap(host_cache={1: frozenset({"m"})}), "m")
    assert (a.gpus, a.source) == ((2,), "host_pinned")
    assert SllmActivator().estimate(snap(), "m", 0).seconds == pytest.approx(2.0)


def test_busy_queue_flips_the_choice_between_ssd_nodes():
    # node 0 has 20 GB queued: 4 s wait + 2 s load = 6 s > node 1's 2 s
    a = SllmActivator().choose(snap(pending={0: 20 * GB}), "m")
    assert (a.gpus, a.source) == ((2,), "ssd")
    assert SllmActivator().estimate(snap(pending={0: 20 * GB}), "m", 0).seconds == pytest.approx(6.0)


def test_host_hit_ignores_queue_unless_configured():
    s = snap(host_cache={0: frozenset({"m"})}, pending={0: 20 * GB})
    assert SllmActivator().choose(s, "m").source == "host_pinned"  # 0.4 s (open scheduler)
    flipped = SllmActivator(host_hit_waits=True).choose(s, "m")  # 4.4 s vs 2 s on node 1
    assert (flipped.gpus, flipped.source) == ((2,), "ssd")


def test_tie_goes_to_lowest_node_and_lowest_free_gpus():
    assert SllmActivator().choose(snap(), "m").gpus == (0,)
    assert SllmActivator().choose(snap(busy=(0,)), "m").gpus == (1,)


def test_tp_needs_enough_free_gpus_on_one_node():
    a = SllmActivator().choose(snap(gpn=2, tp=2, busy=(1,)), "m")
    assert a.gpus == (2, 3)


def test_no_room_returns_none():
    assert SllmActivator().choose(snap(busy=(0, 1, 2, 3)), "m") is None


def test_without_the_host_cache_every_load_reads_the_ssd():
    a = SllmActivator(host_cache_enabled=False).choose(snap(host_cache={1: frozenset({"m"})}), "m")
    assert (a.gpus, a.source) == ((0,), "ssd")
    assert SllmActivator().choose(snap(host_cache={1: frozenset({"m"})}), "m").source == "host_pinned"


def test_local_checkpoints_and_remote_tier():
    only1 = {1: frozenset({"m"})}
    assert SllmActivator(ssd_checkpoints=only1).choose(snap(), "m").gpus == (2,)
    assert SllmActivator(ssd_checkpoints={}).choose(snap(), "m") is None
    r = SllmActivator(ssd_checkpoints={}, remote_enabled=True).choose(snap(), "m")
    assert (r.gpus, r.source) == ((0,), "remote")
    assert SllmActivator(ssd_checkpoints={}, remote_enabled=True).estimate(snap(), "m", 0).seconds == pytest.approx(5.0)


def test_bandwidths_configurable_and_missing_link_is_a_user_error():
    assert SllmActivator(disk_bw=10 * GB).estimate(snap(), "m", 0).seconds == pytest.approx(1.0)
    with pytest.raises(UserError, match="disk_bw"):
        SllmActivator().choose(snap(links={}), "m")


# ---- autoscaler ----------------------------------------------------------------------------------

def inst(i, inflight, state=ACTIVE, model="m"):
    return InstanceView(id=i, model=model, gpus=(i,), state=state, inflight=inflight, created_s=0.0)


def test_desired_arithmetic():
    a = SllmAutoscaler(target_concurrency=4, max_instances=3, min_instances=0)
    assert [a.desired(d) for d in (0, 1, 4, 5, 8, 9, 100)] == [0, 1, 1, 2, 2, 3, 3]
    assert SllmAutoscaler(min_instances=2).desired(0) == 2


def test_scale_up_when_inflight_exceeds_instances_times_target():
    s = snap(instances=(inst(0, 9),), load={"m": LoadView(inflight=9, avg_inflight=9, waiting=0, instances=1)})
    assert SllmAutoscaler(target_concurrency=4).decide(s).start == {"m": 1}  # one per period
    assert SllmAutoscaler(target_concurrency=4, max_starts_per_period=None).decide(s).start == {"m": 2}
    fits = snap(instances=(inst(0, 8),), load={"m": LoadView(inflight=8, avg_inflight=8, waiting=0, instances=1)})
    assert SllmAutoscaler(target_concurrency=4, max_starts_per_period=None).decide(fits).start == {"m": 1}


def test_router_held_requests_start_the_first_instance():
    s = snap(load={"m": LoadView(inflight=0, avg_inflight=0, waiting=3, instances=0)})
    assert SllmAutoscaler(target_concurrency=4).decide(s).start == {"m": 1}


def test_keep_alive_releases_idle_instance_only_after_keep_alive():
    a = SllmAutoscaler(keep_alive_s=5.0)
    load = {"m": LoadView(inflight=1, avg_inflight=1, waiting=0, instances=2)}

    def at(t, idle_inflight=0):
        return snap(time_s=t, instances=(inst(0, idle_inflight), inst(1, 1)), load=load)

    assert [a.decide(at(t)).stop for t in (0.0, 1.0, 4.0)] == [(), (), ()]
    assert a.decide(at(5.0)).stop == (0,)
    # a busy tick resets the clock
    b = SllmAutoscaler(keep_alive_s=5.0)
    b.decide(at(0.0))
    b.decide(at(2.0, idle_inflight=1))
    assert b.decide(at(3.0)).stop == ()
    assert b.decide(at(7.0)).stop == ()
    assert b.decide(at(8.0)).stop == (0,)


def test_keep_alive_zero_releases_at_first_idle_tick_but_keeps_needed_and_min():
    load = {"m": LoadView(inflight=1, avg_inflight=1, waiting=0, instances=2)}
    s = snap(instances=(inst(0, 0), inst(1, 1)), load=load)
    assert SllmAutoscaler().decide(s).stop == (0,)
    # desired (1) == live: nothing stops even though instance 0 is idle
    s1 = snap(instances=(inst(0, 0),), load={"m": LoadView(1, 1, 1, 1)})
    assert SllmAutoscaler().decide(s1).stop == ()
    assert SllmAutoscaler(min_instances=2).decide(s).stop == ()
    # a loading instance is never stopped by keep-alive
    s2 = snap(instances=(inst(0, 0, state=LOADING), inst(1, 1)), load=load)
    assert SllmAutoscaler().decide(s2).stop == ()


def test_autoscaler_rejects_bad_config():
    with pytest.raises(UserError):
        SllmAutoscaler(target_concurrency=0)
    with pytest.raises(UserError):
        SllmAutoscaler(keep_alive_s=-1)


# ---- router --------------------------------------------------------------------------------------

def test_router_uses_ready_instances_with_room_only():
    r = SllmRouter(max_queue_length=2)
    insts = [inst(0, 0, state=LOADING), inst(1, 2), inst(2, 1), inst(3, 1)]
    assert r.route("m", insts) == 2
    assert r.route("m", [inst(0, 0, state=LOADING), inst(1, 2)]) is None
