"""The decisions of the 2025-26 cold-start systems on hand-made snapshots: vLLM sleep mode's activator,
Prism's placement, scheduler, activator and sharing model (HydraServe's planner: tests/sim/test_pipeline.py)."""

import pytest

from tests.policies.snapshots import GIB, inst, snap
from warmsim.policies.prism import KVPressurePlacer, PrismActivator, PrismScheduler, TimeSlicing
from warmsim.policies.sleep import SleepActivator
from warmsim.policies.types import LoadView, ModelView, SleeperView
from warmsim.sim.errors import UserError

MODELS = {"a": ModelView("a", 14 * GIB, 1, 14 * GIB, 512 * 1024), "b": ModelView("b", 28 * GIB, 2, 14 * GIB, 800 * 1024)}


def with_sleepers(sn, *sleepers):
    from dataclasses import replace
    return replace(sn, asleep=tuple(sleepers))


# ---- vLLM sleep mode -----------------------------------------------------------------------------
def test_sleep_activator_wakes_a_level1_sleeper_before_a_level2_one_and_older_first():
    sn = with_sleepers(snap(models=MODELS, used={}), SleeperView(5, "a", (1,), 2, 10.0),
                       SleeperView(6, "a", (2,), 1, 20.0), SleeperView(7, "a", (3,), 1, 15.0))
    act = SleepActivator().choose(sn, "a")
    assert (act.wake, act.gpus, act.source) == (7, (3,), "sleep_backup")


def test_sleep_activator_reloads_a_level2_sleeper_from_its_reload_source():
    sn = with_sleepers(snap(models=MODELS, used={}), SleeperView(5, "a", (1,), 2, 10.0))
    act = SleepActivator(reload_source="ssd").choose(sn, "a")
    assert (act.wake, act.source) == (5, "ssd")


def test_sleep_activator_skips_a_sleeper_whose_gpu_serves_another_instance():
    sn = with_sleepers(snap(models=MODELS, instances=(inst(1, "b", (0, 1)),)), SleeperView(5, "a", (1,), 1, 1.0),
                       SleeperView(6, "b", (2,), 1, 1.0))
    act = SleepActivator().choose(sn, "a")
    assert act.wake is None and act.source == "page_cache"
    assert act.gpus == (3,)  # a cold start on the free GPU without a sleeper (2 holds b's)


def test_sleep_activator_cold_starts_a_tp_group_away_from_sleepers():
    sn = with_sleepers(snap(n_nodes=2, gpus_per_node=2, models=MODELS), SleeperView(5, "a", (0,), 1, 1.0))
    assert SleepActivator().choose(sn, "b").gpus == (2, 3)


def test_sleep_activator_checks_its_sources():
    with pytest.raises(UserError, match="SleepActivator.source"):
        SleepActivator(source="sleep_backup")  # not a storage tier


# ---- Prism ---------------------------------------------------------------------------------------
def test_kv_pressure_placement_spreads_by_pressure_then_shares_gpus():
    # Two GPUs, three models of 14 GB: the busiest first, each to the lowest-pressure GPU; the third
    # joins the GPU whose w / free memory is lower (b's 2-GPU group needs both: it comes second).
    models = {"a": ModelView("a", 14 * GIB, 1, 14 * GIB, 512 * 1024), "c": ModelView("c", 14 * GIB, 1, 14 * GIB, 512 * 1024),
              "d": ModelView("d", 14 * GIB, 1, 14 * GIB, 512 * 1024)}
    plan = KVPressurePlacer().place(snap(n_nodes=1, gpus_per_node=2, models=models, used={0: 0, 1: 0}),
                                    {"a": 3.0, "c": 2.0, "d": 1.0, "zero": 0.0})
    assert [(p.model, p.gpus) for p in plan] == [("a", (0,)), ("c", (1,)), ("d", (1,))]
    assert all(p.compute_share == 0.25 and p.source == "host_pageable" for p in plan)


def test_kv_pressure_placement_respects_workers_per_gpu_and_memory():
    models = {m: ModelView(m, 30 * GIB, 1, 30 * GIB, 512 * 1024) for m in "abc"}
    plan = KVPressurePlacer(workers_per_gpu=2).place(snap(n_nodes=1, gpus_per_node=1, models=models, used={0: 0}),
                                                     {"a": 3.0, "b": 2.0, "c": 1.0})
    assert [p.model for p in plan] == ["a", "b"]  # 72 GB: room for two 30-GB shards and their KV only


def test_prism_scheduler_deactivates_after_its_idle_time_and_activates_models_with_requests():
    from dataclasses import replace
    busy = inst(1, "a", (0,), inflight=0)
    idle = replace(inst(2, "b", (1, 2)), idle_since=40.0)
    load = {"a": LoadView(0, 0.0, 0, 1), "b": LoadView(0, 0.0, 0, 1), "c": LoadView(3, 3.0, 3, 0)}
    sn = snap(models={**MODELS, "c": MODELS["a"]}, instances=(replace(busy, idle_since=80.0), idle), load=load, t=100.0)
    d = PrismScheduler().decide(sn)
    assert d.stop == (2,) and dict(d.start) == {"c": 1}  # b idle 60 s >= 50 s, a only 20 s


def test_prism_activator_picks_the_most_free_memory_then_the_fewest_requests():
    # GPU 0: 40 GB used (little room); GPUs 1 and 2 within 5 GB of each other: the one with fewer
    # requests in flight wins; GPU 3 is full.
    sn = snap(n_nodes=1, gpus_per_node=4, models=MODELS, used={0: 40 * GIB, 1: 16 * GIB, 2: 14 * GIB, 3: 72 * GIB},
              instances=(inst(1, "x", (2,), inflight=5, share=0.25), inst(2, "y", (1,), inflight=1, share=0.25)))
    act = PrismActivator().choose(sn, "a")
    assert act.gpus == (1,) and act.compute_share == 0.25


def test_prism_activator_has_no_room_when_every_gpu_holds_workers_per_gpu_engines():
    sn = snap(n_nodes=1, gpus_per_node=1, models=MODELS, used={0: 0},
              instances=tuple(inst(i, "x", (0,), share=0.25) for i in range(4)))
    assert PrismActivator().choose(sn, "a") is None


def test_time_slicing_slows_only_for_busy_neighbours():
    t = TimeSlicing()
    assert t.factor("decode", 0.25, 8, 0) == 1.0
    assert t.factor("prefill", 0.25, 8, 2, tokens=100) == 3.0
    assert TimeSlicing(contention=0.5).factor("decode", 0.25, 1, 1) == 1.5
