"""vLLM sleep mode (``sim/mechanisms/sleep.py``) by hand: an idle engine falls asleep instead of stopping,
and the next instance of its model wakes it, paying only the wake call, the weights and the KV cache.

Set-up: one GPU; every link at ``SHARD`` bytes/s (a shard's copy takes 1 s; pageable copies are capped
at a quarter of that, 4 s); the wake call 0.25 s; VMM handles 0.1 s per GiB (the ``cumem`` memory
switch creates them for the weights and the KV cache); process start 1 s, engine init 1 s, prefill
0.05 s, no profiling forward. ServerlessLLM's autoscaler (ticks every second, keep-alive 0) asks for
instances; request 0 arrives at 0 s, request 1 at 30 s, one prompt of 10 tokens and one output token each.
"""

import pytest

from tests.sim.helpers import cluster, cost, model, workload
from warmsim.policies.bundle import Bundle
from warmsim.policies.sleep import SleepActivator
from warmsim.policies.sllm import SllmAutoscaler, SllmRouter
from warmsim.policies.types import Activate
from warmsim.sim.errors import PlanError
from warmsim.sim.mechanisms.sleep import ASLEEP, GIB, SleepKnobs
from warmsim.sim.memory import KV, WEIGHTS
from warmsim.sim.models import align_up
from warmsim.sim.simulation import Simulation

US = 1e-6
SHARD = model().shard_bytes
A_W = 0.1 * SHARD / GIB  # VMM handles for the weights


def bundle(**knobs) -> Bundle:
    return Bundle("sleepy", SllmRouter(32), SllmAutoscaler(target_concurrency=32, keep_alive_s=0.0, max_instances=None),
                  SleepActivator(source="host_pinned", reload_source="host_pageable"), memswitch="cumem",
                  profile_run=False, scale_on_miss=False, extras={"sleep": SleepKnobs(**knobs)})


def sim(models=("a", "a"), arrivals=(0.0, 30.0), **knobs) -> Simulation:
    """Request i for ``models[i]`` at ``arrivals[i]``, on two GPUs."""
    c = cost(process_start=1.0, engine_init=1.0, engine_wake=0.25, vmm_alloc_per_gib=0.1, prefill_base_s=0.05,
             bandwidth=float(SHARD))
    names = tuple(sorted(set(models)))
    w = workload(list(arrivals), [10] * len(arrivals), [1] * len(arrivals), models=names,
                 model_idx=[names.index(m) for m in models])
    return Simulation(w, {m: model(m) for m in names}, cluster(gpus=2, bw=float(SHARD)), c, bundle(**knobs))


def kv_alloc(s) -> float:
    """KV handles of an engine alone on its GPU (the pool after its weights, in whole blocks)."""
    block = s.engine_spec.block_size * model().kv_bytes_per_token_per_gpu
    return 0.1 * ((s.cluster.spec.gpu_pool_bytes - SHARD) // block * block) / GIB


def asleep_at_end(**knobs) -> Simulation:
    """Model a's engine sleeps from about 5 s; model b's request at 100 s keeps the run going (on GPU 1)."""
    s = sim(models=("a", "b"), arrivals=(0.0, 100.0), **knobs)
    s.run()
    return s


def test_a_cold_start_then_a_level1_sleep_then_a_level1_wake():
    s = sim()
    a_kv = kv_alloc(s)
    rec = s.run()
    req = rec.requests_table()
    # Cold: tick 1 s + process 1 s + handles A_W + copy 1 s + engine init 1 s + KV handles + prefill 0.05 s.
    assert req.first_token_s[0] == pytest.approx(1 + 1 + A_W + 1 + 1 + a_kv + 0.05, abs=US)
    # Wake at the 30 s tick: wake call 0.25 s + handles + copy back from the pinned backup 1 s + KV handles.
    assert req.ttft_s[1] == pytest.approx(0.25 + A_W + 1.0 + a_kv + 0.05, abs=US)
    tl = rec.timeline_table()
    sl = tl[tl.kind == "sleeper"]
    # Released at the first tick after it emptied (keep-alive 0); falling asleep: call 0.25 s + copy out 1 s.
    stop = tl[(tl.kind == "instance") & (tl.state == "draining")].time_s.iloc[0]
    assert list(sl.state) == ["asleep", "woken"]
    assert sl.time_s.iloc[0] == pytest.approx(stop + 1.25, abs=US) and sl.detail.iloc[0].startswith("level 1")
    assert rec.counters["a"]["cold_starts"] == 1 and rec.counters["a"]["instance_starts"] == 2


def test_a_level2_wake_reloads_from_its_storage_source():
    s = sim(level=2)
    a_kv = kv_alloc(s)
    req = s.run().requests_table()
    # Reload from pageable host memory, capped at a quarter of the link: 4 s.
    assert req.ttft_s[1] == pytest.approx(0.25 + A_W + 4.0 + a_kv + 0.05, abs=US)
    lines = s.mechanism_lines()
    assert "level 2 1 (mean" in lines[0] and "sim/mechanisms/sleep.py" in lines[0]


def test_level1_wake_is_faster_than_level2():
    t1 = sim().run().requests_table().ttft_s[1]
    t2 = sim(level=2).run().requests_table().ttft_s[1]
    assert t1 < t2


def test_a_sleeper_keeps_its_residual_on_the_gpu_and_its_backup_in_host_memory():
    s = asleep_at_end(residual_gib=1.5)
    mech = s.mechanisms[0]
    (sl,) = mech.sleepers.values()
    mem = s.cluster.gpus[0].mem
    assert mem.bytes_of(ASLEEP, sl.id) == align_up(int(1.5 * GIB))
    assert mem.kind_bytes(WEIGHTS) == 0 and mem.kind_bytes(KV) == 0
    assert mech.host_used[0] == model().weight_bytes and sl.level == 1
    assert s.snapshot().asleep[0].model == "a" and 0 not in s.snapshot().busy_gpus()  # its GPU counts as free
    assert s.cluster.gpus[1].instances  # b started on the GPU without a sleeper


def test_a_spent_host_budget_sends_the_engine_to_level2():
    s = asleep_at_end(host_budget_gib=1.0)  # less than the 13.5 GB backup
    (sl,) = s.mechanisms[0].sleepers.values()
    assert sl.level == 2 and s.mechanisms[0].host_used[0] == 0


def test_a_wake_is_refused_on_a_busy_gpu_or_from_the_wrong_source():
    s = asleep_at_end()
    (sl,) = s.mechanisms[0].sleepers.values()
    with pytest.raises(PlanError, match="sleep_backup"):
        s.apply_activate(Activate("a", (0,), source="host_pinned", wake=sl.id))
    s.apply_activate(Activate("a", (0,), source="host_pinned"))  # a cold start on its GPU, beside the sleeper
    with pytest.raises(PlanError, match="serve other instances"):
        s.apply_activate(Activate("a", (0,), source="sleep_backup", wake=sl.id))


def test_bad_knobs_are_one_line_errors():
    from warmsim.sim.errors import UserError
    from warmsim.sim.mechanisms import check_knobs
    with pytest.raises(UserError, match="mechanisms.sleep: level must be 1 or 2"):
        check_knobs("sleep", {"level": 3}, "x")
    with pytest.raises(UserError, match="unknown knob"):
        check_knobs("sleep", {"levle": 1}, "x")
