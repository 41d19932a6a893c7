"""Evict-aware placement (warmserve.md section 4): demand, scores, nesting rules, choice, commit."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmsim.policies.types import ACTIVE, GPUView, InstanceView, ModelView, Prewarm, ReplicaView, Snapshot
from warmsim.policies.warmserve.groups import ReplicaTable, scan_groups, subset_masks
from warmsim.policies.warmserve.placement import EvictAwarePlacer, RoundRobinPlacer, shard_need
from warmsim.policies.warmserve.scores import replica_demand, replica_scores
from warmsim.sim.models import MIB, align_up

GIB = 1 << 30
CAP = 80 * GIB


def model(name: str, weight: int, tp: int = 1) -> ModelView:
    return ModelView(name, weight, tp, align_up(-(-weight // tp)))


def snap(models: list[ModelView], *, nodes: int = 1, gpn: int = 8, replicas=(), instances=(),
         used: dict[int, int] | None = None, cap: int = CAP) -> Snapshot:
    """A snapshot whose GPUs' used bytes are the replicas' shards plus ``used`` extras."""
    used = dict(used or {})
    reps = []
    by_name = {m.name: m for m in models}
    for rid, name, gpus, *ready in replicas:
        mv = by_name[name]
        reps.append(ReplicaView(rid, name, tuple(gpus), ready[0] if ready else True, mv.shard_bytes))
        for g in gpus:
            used[g] = used.get(g, 0) + mv.shard_bytes
    insts = [InstanceView(iid, name, tuple(gpus), ACTIVE, 0, 0.0) for iid, name, gpus in instances]
    gpus = []
    for g in range(nodes * gpn):
        gpus.append(GPUView(g, g // gpn, cap, used.get(g, 0),
                            replicas=tuple(r.id for r in reps if g in r.gpus),
                            instances=tuple(i.id for i in insts if g in i.gpus)))
    return Snapshot(0.0, gpn, tuple(gpus), {m.name: m for m in models}, tuple(insts), tuple(reps))


def placed(actions) -> list[tuple[str, tuple[int, ...]]]:
    assert all(isinstance(a, Prewarm) for a in actions)
    return [(a.model, a.gpus) for a in actions]


# ---- demand and scores ---------------------------------------------------------------------------

def test_demand_formulas():
    # n_found = max(ceil(70/32) - 1, 0) = 2; n_burst = max(ceil(130/32) - 1 - 2, 0) = 2
    assert replica_demand(70, 130, 1, 32) == (2, 2)
    assert replica_demand(70, 130, 5, 32) == (0, 0)
    assert replica_demand(0, 0, 0, 32) == (0, 0)
    assert replica_demand(32, 32, 0, 32) == (1, 0)
    assert replica_demand(32.01, 64, 0, 32) == (2, 0)
    assert replica_demand(10, 100, 0, 32) == (1, 3)


def test_scores_by_hand():
    w = 64 * GIB  # cold = 64 / 2 / 32 = 1.0 s per GPU shard at tp 2
    s = replica_scores(70, 130, 1, weight_bytes=w, tp=2, per_instance=32, bandwidth_gib_s=32.0, zero_avg_as=1.0)
    f = 130 / 70
    assert s == pytest.approx([1.0, math.exp(-1 / 4), math.exp(-2 / 4) * f, math.exp(-3 / 4) * f])


def test_scores_zero_average_uses_guard():
    w = 32 * GIB  # cold = 1.0
    s = replica_scores(0.0, 40.0, 0, weight_bytes=w, tp=1, per_instance=32, bandwidth_gib_s=32.0, zero_avg_as=1.0)
    # n_found 0, n_burst 2, burst factor 40 / 1
    assert s == pytest.approx([40.0, math.exp(-1 / 2) * 40.0])
    s2 = replica_scores(0.0, 40.0, 0, weight_bytes=w, tp=1, per_instance=32, bandwidth_gib_s=32.0, zero_avg_as=4.0)
    assert s2 == pytest.approx([10.0, math.exp(-1 / 2) * 10.0])


def test_existing_replicas_take_scores_in_id_order_and_extras_get_zero():
    a = model("a", 32 * GIB)  # cold 1.0
    s = snap([a], gpn=8, replicas=[(7, "a", (1,)), (3, "a", (0,))])
    placer = EvictAwarePlacer()
    scores, todo = placer.candidates(s, {"a": (96.0, 96.0)})  # 3 foundation replicas
    assert scores == pytest.approx({3: 1.0, 7: math.exp(-1 / 3)})
    assert todo == [(pytest.approx(math.exp(-2 / 3)), "a")]
    scores, todo = placer.candidates(s, {"a": (20.0, 20.0)})  # 1 wanted, 2 exist
    assert scores == pytest.approx({3: 1.0, 7: 0.0}) and todo == []


def test_running_instances_reduce_demand():
    a = model("a", 10 * GIB)
    s = snap([a], gpn=4, instances=[(1, "a", (0,)), (2, "a", (1,))])
    only_idle = EvictAwarePlacer(count_running=False)
    assert only_idle.plan(s, {"a": (64.0, 64.0)}) == []
    assert placed(only_idle.plan(s, {"a": (65.0, 65.0)})) == [("a", (0,))]


def test_a_running_instance_also_counts_as_a_replica_as_in_the_artifact():
    # Demand ceil(peak / 32) minus 2 running; the 2 running instances' own weights are registered
    # replicas too, so only demand beyond 4 places anything: 129 requests want 5 -> 3 after the
    # running ones -> 1 new replica, which avoids the GPUs model a already holds.
    a = model("a", 10 * GIB)
    s = snap([a], gpn=4, instances=[(1, "a", (0,)), (2, "a", (1,))])
    p = EvictAwarePlacer()
    assert p.count_running
    assert p.plan(s, {"a": (65.0, 65.0)}) == [] and not p.wants_more(s, {"a": (65.0, 65.0)})
    assert p.plan(s, {"a": (128.0, 128.0)}) == []
    assert placed(p.plan(s, {"a": (129.0, 129.0)})) == [("a", (2,))]
    assert p.wants_more(s, {"a": (129.0, 129.0)})


# ---- memory --------------------------------------------------------------------------------------

def test_memory_check_uses_2mib_aligned_shard():
    a = model("a", 10 * GIB + 1)
    need = 10 * GIB + 2 * MIB
    assert shard_need(a, 2 * MIB) == need
    ok = snap([a], gpn=1, used={0: CAP - need})
    assert placed(EvictAwarePlacer().plan(ok, {"a": (1.0, 1.0)})) == [("a", (0,))]
    short = snap([a], gpn=1, used={0: CAP - need + 1})
    assert EvictAwarePlacer().plan(short, {"a": (1.0, 1.0)}) == []


def test_tp_shard_rounds_up_per_gpu():
    b = model("b", 6 * MIB, tp=2)  # 3 MiB per GPU -> 4 MiB
    assert shard_need(b, 2 * MIB) == 4 * MIB
    s = snap([b], gpn=2, used={0: CAP - 4 * MIB, 1: CAP - 3 * MIB})
    assert EvictAwarePlacer().plan(s, {"b": (1.0, 1.0)}) == []


def test_commit_subtracts_memory_within_one_call():
    a, b, c = model("a", 12 * GIB), model("b", 11 * GIB), model("c", 10 * GIB)
    s = snap([a, b, c], gpn=1, used={0: CAP - 25 * GIB})
    # scores follow size (a > b > c); after a and b only 2 GiB remain, so c is skipped
    assert placed(EvictAwarePlacer().plan(s, {m: (1.0, 1.0) for m in "abc"})) == [("a", (0,)), ("b", (0,))]


def test_serving_gpus_are_not_excluded():
    a, x = model("a", 10 * GIB), model("x", 10 * GIB)
    s = snap([a, x], gpn=2, instances=[(1, "x", (0,))], used={0: 30 * GIB})
    assert placed(EvictAwarePlacer().plan(s, {"a": (1.0, 1.0)})) == [("a", (0,))]


# ---- nesting rules -------------------------------------------------------------------------------

def ok_groups(s: Snapshot, name: str, scores: dict[int, float] | None = None) -> set[tuple[int, ...]]:
    """Allowed groups (global GPU ids) of a new replica of ``name``, from scan_groups."""
    g = s.gpus_per_node
    names = sorted({*s.models, *(r.model for r in s.replicas)})
    idx = {n: i for i, n in enumerate(names)}
    table = ReplicaTable(s.n_nodes, g)
    for r in s.replicas:
        node = r.gpus[0] // g
        table.add(node, sum(1 << (x - node * g) for x in r.gpus), len(r.gpus), idx[r.model],
                  (scores or {}).get(r.id, 0.0))
    mv = s.models[name]
    free = np.array([gv.free_bytes for gv in s.gpus], dtype=np.int64).reshape(s.n_nodes, g)
    masks = subset_masks(g, mv.tp)
    scan = scan_groups(table, free, shard_need(mv, 2 * MIB), mv.tp, idx[name], masks)
    out = set()
    for i, k in zip(*np.nonzero(scan.ok)):
        node, m = int(scan.nodes[i]), int(masks[k])
        out.add(tuple(node * g + j for j in range(g) if (m >> j) & 1))
    return out


@pytest.fixture
def nested():
    """8-GPU node: B (tp2) on 0,1; D (tp4) on 4..7; GPUs 2, 3 empty."""
    ms = [model("b", 2 * GIB, 2), model("d", 4 * GIB, 4), model("n1", GIB, 1), model("n2", 2 * GIB, 2),
          model("n4", 4 * GIB, 4), model("n8", 8 * GIB, 8)]
    return snap(ms, gpn=8, replicas=[(1, "b", (0, 1)), (2, "d", (4, 5, 6, 7))])


def test_equal_tp_must_match_exactly(nested):
    ok = ok_groups(nested, "n2")
    assert (0, 1) in ok  # == B's set
    assert (1, 2) not in ok and (0, 2) not in ok  # touches B, differs from it
    assert (2, 3) in ok


def test_larger_replica_requires_subset(nested):
    ok = ok_groups(nested, "n2")
    assert (4, 5) in ok and (5, 7) in ok  # inside D
    assert (3, 4) not in ok and (2, 7) not in ok  # leaves D
    ok1 = ok_groups(nested, "n1")
    assert {(0,), (1,), (2,), (3,), (4,), (7,)} <= ok1


def test_smaller_replica_must_be_contained(nested):
    ok = ok_groups(nested, "n4")
    assert (0, 1, 2, 3) in ok  # contains B
    assert (0, 2, 3, 4) not in ok  # cuts B (and leaves D)
    assert (4, 5, 6, 7) in ok  # equal tp: exactly D
    assert not any(set(grp) & {0, 1} and not {0, 1} <= set(grp) for grp in ok)
    assert ok == {(0, 1, 2, 3), (4, 5, 6, 7)}
    assert ok_groups(nested, "n8") == {tuple(range(8))}


def test_same_model_on_gpu_is_forbidden(nested):
    ok = ok_groups(nested, "b")
    assert (0, 1) not in ok and (2, 3) in ok
    # a placement that wants a second B goes elsewhere, and commits within the call
    s = nested
    got = placed(EvictAwarePlacer().plan(s, {"b": (64.0, 64.0)}))  # 2 wanted, 1 exists
    assert got == [("b", (2, 3))]


def brute_force_ok(gpn: int, tp: int, reps: list[tuple[str, tuple[int, ...]]], new: str,
                   elig: set[int]) -> set[tuple[int, ...]]:
    out = set()
    for grp in itertools.combinations(range(gpn), tp):
        if not set(grp) <= elig:
            continue
        good = True
        for m, gpus in reps:
            if not set(gpus) & set(grp):
                continue
            if m == new:
                good = False
            elif len(gpus) == tp:
                good &= set(gpus) == set(grp)
            elif len(gpus) < tp:
                good &= set(gpus) <= set(grp)
            else:
                good &= set(grp) <= set(gpus)
        if good:
            out.add(grp)
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_scan_matches_brute_force(data):
    gpn = 8
    ms = [model(f"m{t}", t * GIB, t) for t in (1, 2, 4, 8)] + [model(f"k{t}", t * GIB, t) for t in (1, 2, 4)]
    reps = []
    for rid in range(data.draw(st.integers(0, 6))):
        mv = data.draw(st.sampled_from(ms))
        gpus = tuple(sorted(data.draw(st.permutations(range(gpn)))[: mv.tp]))
        reps.append((rid, mv.name, gpus))
    full = data.draw(st.sets(st.integers(0, gpn - 1), max_size=3))
    s = snap(ms, gpn=gpn, replicas=reps, used={g: CAP for g in full})
    new = data.draw(st.sampled_from(ms))
    expected = brute_force_ok(gpn, new.tp, [(m, g) for _, m, g in reps], new.name, set(range(gpn)) - full)
    assert ok_groups(s, new.name) == expected


# ---- choice stages -------------------------------------------------------------------------------

def test_stage_one_prefers_outranking_group_over_smaller_sum():
    # cold = GiB / 32: x1, x2 -> 0.1875 each (sum 0.375 on GPU 0); y -> 0.34375 on GPU 1; a -> 0.28125
    ms = [model("x1", 6 * GIB), model("x2", 6 * GIB), model("y", 11 * GIB), model("a", 9 * GIB)]
    s = snap(ms, gpn=2, replicas=[(1, "x1", (0,)), (2, "x2", (0,)), (3, "y", (1,))])
    preds = {m: (1.0, 1.0) for m in ("x1", "x2", "y", "a")}
    assert placed(EvictAwarePlacer().plan(s, preds)) == [("a", (0,))]


def test_stage_two_smallest_sum_when_nothing_outranked():
    # a (0.28125) outranks neither z (0.5, GPU 0) nor y (0.34375, GPU 1): smallest sum -> GPU 1
    ms = [model("z", 16 * GIB), model("y", 11 * GIB), model("a", 9 * GIB)]
    s = snap(ms, gpn=2, replicas=[(1, "z", (0,)), (2, "y", (1,))])
    preds = {m: (1.0, 1.0) for m in ("z", "y", "a")}
    assert placed(EvictAwarePlacer().plan(s, preds)) == [("a", (1,))]


def test_stage_one_picks_smallest_sum_among_outranked():
    ms = [model("x1", 6 * GIB), model("x2", 6 * GIB), model("x3", 5 * GIB), model("a", 9 * GIB)]
    s = snap(ms, gpn=3, replicas=[(1, "x1", (0,)), (2, "x2", (0,)), (3, "x3", (1,)), (4, "x1", (2,))],
             used={})
    preds = {"a": (1.0, 1.0), "x1": (40.0, 40.0), "x2": (1.0, 1.0), "x3": (1.0, 1.0)}
    # scores: x1 replicas 1 -> 0.1875, 4 -> exp(-1/2)*0.1875; x2 0.1875; x3 0.15625; a 0.28125.
    # All three GPUs are outranked; sums: GPU0 0.375, GPU1 0.15625, GPU2 0.1137 -> GPU 2.
    assert placed(EvictAwarePlacer().plan(s, preds)) == [("a", (2,))]


def test_skip_when_no_group_and_never_evict():
    a, z = model("a", 40 * GIB), model("z", 50 * GIB)
    s = snap([a, z], gpn=2, replicas=[(1, "z", (0,)), (2, "z", (1,))], used={})
    # each GPU has 30 GiB free < 40 GiB; evicting z would make room, but placement never evicts
    assert EvictAwarePlacer().plan(s, {"a": (1.0, 1.0), "z": (0.0, 0.0)}) == []


def test_candidates_by_descending_score_and_same_model_spreads():
    a, b = model("a", 20 * GIB), model("b", 10 * GIB)
    s = snap([a, b], gpn=2, used={0: CAP - 25 * GIB, 1: CAP - 25 * GIB})
    # a: 2 foundation replicas (1.0*0.625, e^-1/2*0.625); b: 1 (0.3125)
    got = placed(EvictAwarePlacer().plan(s, {"a": (64.0, 64.0), "b": (1.0, 1.0)}))
    assert got == [("a", (0,)), ("a", (1,))]  # b no longer fits anywhere (5 GiB left per GPU)


# ---- determinism and scale -----------------------------------------------------------------------

def test_ties_go_to_lowest_gpu_ids_and_repeat_exactly():
    b = model("b", 2 * GIB, 2)
    s = snap([b], nodes=2, gpn=8)
    assert placed(EvictAwarePlacer().plan(s, {"b": (96.0, 96.0)})) == [("b", (0, 1)), ("b", (2, 3)), ("b", (4, 5))]


def big_snapshot(seed: int = 0, nodes: int = 64, gpn: int = 8, n_replicas: int = 100):
    rng = random.Random(seed)
    ms = [model(f"m{i}", (7 + 3 * i) * GIB, tp) for i, tp in enumerate([1, 1, 1, 1, 2, 2, 2, 4, 4, 8, 1, 2])]
    reps, rid = [], 0
    tries = 0
    while len(reps) < n_replicas and tries < 10000:
        tries += 1
        mv = rng.choice(ms)
        node = rng.randrange(nodes)
        start = rng.randrange(0, gpn, mv.tp)
        gpus = tuple(node * gpn + start + j for j in range(mv.tp))
        if any(m == mv.name and set(g) & set(gpus) for _, m, g in reps):
            continue
        reps.append((rid, mv.name, gpus))
        rid += 1
    preds = {m.name: (rng.uniform(0, 300), rng.uniform(100, 600)) for m in ms}
    return snap(ms, nodes=nodes, gpn=gpn, replicas=reps), preds


def test_plan_is_deterministic_under_replica_order():
    s, preds = big_snapshot(seed=3, nodes=4)
    shuffled = Snapshot(s.time_s, s.gpus_per_node, s.gpus, s.models, s.instances,
                        tuple(random.Random(1).sample(list(s.replicas), len(s.replicas))))
    p = EvictAwarePlacer()
    assert p.plan(s, preds) == p.plan(s, preds) == p.plan(shuffled, preds)


def test_plan_respects_memory_and_rules_at_scale():
    s, preds = big_snapshot(seed=5, nodes=64)
    actions = EvictAwarePlacer().plan(s, preds)
    assert actions
    free = {gv.id: gv.free_bytes for gv in s.gpus}
    for a in actions:
        mv = s.models[a.model]
        assert len(a.gpus) == mv.tp and len({g // 8 for g in a.gpus}) == 1
        for g in a.gpus:
            free[g] -= shard_need(mv, 2 * MIB)
            assert free[g] >= 0


# ---- round robin ---------------------------------------------------------------------------------

def test_round_robin_first_fit_without_nesting():
    ms = [model("a", 10 * GIB, 1), model("b", 10 * GIB, 2)]
    s = snap(ms, gpn=4, replicas=[(1, "b", (1, 2))])
    got = placed(RoundRobinPlacer(artifact_loop=False).plan(s, {"a": (64.0, 64.0), "b": (64.0, 64.0)}))
    # a, b, a in turn; b already has one replica so it wants one more; no nesting: b may cut (1, 2)
    assert got == [("a", (0,)), ("b", (0, 3)), ("a", (1,))]


def test_round_robin_artifact_loop_stops_at_exhausted_model():
    ms = [model("a", 10 * GIB), model("b", 10 * GIB)]
    s = snap(ms, gpn=4)
    got = placed(RoundRobinPlacer(artifact_loop=True).plan(s, {"a": (0.0, 0.0), "b": (64.0, 64.0)}))
    assert got == []  # the artifact starts at model "a", whose demand is 0, and stops there
    got = placed(RoundRobinPlacer(artifact_loop=False).plan(s, {"a": (0.0, 0.0), "b": (64.0, 64.0)}))
    assert got == [("b", (0,)), ("b", (1,))]


# The artifact's --disable-placement loop (scheduler.py Scheduler.prewarm), checked by hand on small
# snapshots: ModelList (config) order, full demand every tick, stop at the first model with demand 0.

def test_round_robin_defaults_are_the_artifact_loop_in_config_order():
    p = RoundRobinPlacer()
    assert p.artifact_loop is True and p.order == "config"
    # config order z, a (not name order): z is placed first
    ms = [model("z", 10 * GIB), model("a", 10 * GIB)]
    s = snap(ms, gpn=4)
    got = placed(p.plan(s, {"z": (64.0, 64.0), "a": (32.0, 32.0)}))
    # z wants ceil(64/32) = 2, a wants 1: z, a, z, then a's demand is used up: stop
    assert got == [("z", (0,)), ("a", (0,)), ("z", (1,))]
    got = placed(RoundRobinPlacer(order="name").plan(s, {"z": (64.0, 64.0), "a": (32.0, 32.0)}))
    assert got == [("a", (0,)), ("z", (0,))]  # name order: a, z, then a's demand is used up: stop
    with pytest.raises(ValueError):
        RoundRobinPlacer(order="popularity")


def test_round_robin_artifact_does_not_subtract_existing_replicas():
    ms = [model("a", 10 * GIB), model("b", 10 * GIB)]
    preds = {"a": (32.0, 32.0), "b": (32.0, 32.0)}  # demand 1 each, no instance running
    s = snap(ms, gpn=4, replicas=[(1, "a", (0,)), (2, "b", (1,))])
    # both already have their one replica; the artifact places one more of each anyway
    assert placed(RoundRobinPlacer().plan(s, preds)) == [("a", (1,)), ("b", (0,))]
    # our variant sees the demand met and places nothing
    assert placed(RoundRobinPlacer(artifact_loop=False).plan(s, preds)) == []


def test_round_robin_artifact_replicas_pile_up_tick_after_tick():
    ms = [model("a", 30 * GIB), model("b", 30 * GIB)]
    preds = {"a": (32.0, 32.0), "b": (32.0, 32.0)}
    p = RoundRobinPlacer()
    reps: list[tuple] = []
    counts = []
    for _tick in range(6):
        s = snap(ms, gpn=2, replicas=reps)
        for a in p.plan(s, preds):
            reps.append((len(reps) + 1, a.model, a.gpus))
        counts.append(len(reps))
    # 2 GPUs x 80 GiB hold two 30 GiB shards each, one per model per GPU: each tick adds a and b
    # until every GPU holds both models (the same-model exclusion), then nothing more fits
    assert counts == [2, 4, 4, 4, 4, 4]
    assert sorted((m, g) for _, m, g in reps) == [("a", (0,)), ("a", (1,)), ("b", (0,)), ("b", (1,))]
    # our variant stops at the demand: one replica each
    reps2: list[tuple] = []
    for _tick in range(3):
        s = snap(ms, gpn=2, replicas=reps2)
        for a in RoundRobinPlacer(artifact_loop=False).plan(s, preds):
            reps2.append((len(reps2) + 1, a.model, a.gpus))
    assert len(reps2) == 2


def test_round_robin_artifact_stops_at_first_model_without_room():
    # a (tp 2) finds no 2 GPUs with room; the artifact ends the tick there, b never gets a turn
    ms = [model("a", 60 * GIB, 2), model("b", 10 * GIB)]
    s = snap(ms, gpn=2, used={0: 60 * GIB})
    preds = {"a": (32.0, 32.0), "b": (32.0, 32.0)}
    assert placed(RoundRobinPlacer().plan(s, preds)) == []
    assert placed(RoundRobinPlacer(artifact_loop=False).plan(s, preds)) == [("b", (0,))]


def test_round_robin_artifact_counts_running_instances_in_demand():
    ms = [model("a", 10 * GIB), model("b", 10 * GIB)]
    # a: ceil(64/32) - 1 running = 1 replica wanted; b: 1
    s = snap(ms, gpn=4, instances=[(7, "a", (3,))], used={3: 70 * GIB})
    got = placed(RoundRobinPlacer().plan(s, {"a": (64.0, 64.0), "b": (32.0, 32.0)}))
    assert got == [("a", (0,)), ("b", (0,))]
