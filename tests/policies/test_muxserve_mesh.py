"""MuxServe's mesh placer as the artifact ran it: each formula against a hand computation from its
source (hao-ai-lab/MuxServe muxsched/placement.py; LLMServe/WarmServe prewarm_manager.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.helpers import cluster, cost, workload
from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.muxserve import MuxServeMeshPlacer, MuxServeRouter
from warmsim.policies.types import Activate, GPUView, ModelView, Snapshot
from warmsim.sim.catalog import get_shape
from warmsim.sim.errors import UserError
from warmsim.sim.models import CHUNK_BYTES, ServedModel, align_up
from warmsim.sim.simulation import Simulation

GIB = 1 << 30
POOL = 72 * GIB
R = 7_600_000_000  # MuxServe's per-model reserve (YamlBuilder.update_utilization)


class FlatCosts:
    """Decode step ``d / tp`` whatever the batch; prefill ``q x tokens / tp``."""

    def __init__(self, d=0.001, q=0.0):
        self.d, self.q = d, q

    def prefill_s(self, model, tp, tokens, seqs):
        return self.q * tokens / tp

    def decode_s(self, model, tp, batch, ctx_tokens):
        return self.d / tp


class NoSlowdown:
    def factor(self, phase, share, batch, busy_neighbours=0, tokens=None):
        return 1.0


def mv(name, base):
    s = ServedModel(name, get_shape(base), 1)
    return ModelView(name, s.weight_bytes, 1, s.shard_bytes, s.shape.kv_bytes_per_token)


def snapshot(models, nodes=1, gpn=1):
    gpus = tuple(GPUView(g, g // gpn, POOL, 0) for g in range(nodes * gpn))
    return Snapshot(0.0, gpn, gpus, {m.name: m for m in models})


def placer(**kw):
    """The placer on hand-made costs, planning at the given rates (``plan_rps`` None) unless told."""
    kw.setdefault("sched_overhead_s", ((1e9, 0.0),))
    kw.setdefault("plan_rps", None)
    return MuxServeMeshPlacer(costs=kw.pop("costs", FlatCosts()), sharing=kw.pop("sharing", NoSlowdown()), **kw)


def test_max_num_seqs_is_the_smallest_batch_whose_estimated_throughput_meets_the_mean_rate():
    # tpt(bs) = bs / (t_decode x 337 + t_prefill) = bs / (0.001 x 337) = bs / 0.337 >= 10  ->  bs = 4
    (act, d), = placer().plan(snapshot([mv("a", "llama-2-7b")]), {"a": 10.0})
    assert act.max_num_seqs == 4 and d["satisfied"]
    # with prefill 1e-5 s per token: tpt(bs) = bs / (0.337 + 161e-5 bs) >= 10  ->  bs (1 - 0.0161) >= 3.37 -> 4
    (act, _), = placer(costs=FlatCosts(q=1e-5)).plan(snapshot([mv("a", "llama-2-7b")]), {"a": 10.0})
    assert act.max_num_seqs == 4
    # rate 20: bs / 0.337 >= 20 -> bs >= 6.74 -> 7
    (act, _), = placer().plan(snapshot([mv("a", "llama-2-7b")]), {"a": 20.0})
    assert act.max_num_seqs == 7


def test_share_is_max_of_prefill_and_decode_percent_over_the_mesh_sum():
    # One GPU, two models: one mesh. Decode % is the first level (10) since nothing slows; prefill %
    # is 80 for a 7B and 90 for a 13B (dump_to_yaml's prefill_mps_dict): shares 80/170 and 90/170.
    plan = dict((a.model, a) for a, _ in placer().plan(snapshot([mv("a", "llama-2-7b"), mv("b", "llama-2-13b")]),
                                                       {"a": 2.0, "b": 1.0}))
    assert plan["a"].compute_share == pytest.approx(80 / 170)
    assert plan["b"].compute_share == pytest.approx(90 / 170)
    assert plan["a"].gpus == plan["b"].gpus == (0,) and plan["a"].tp == plan["b"].tp == 1


def test_kv_is_the_memory_left_after_weights_and_reserves_split_by_kv_block_size():
    a, b = mv("a", "llama-2-7b"), mv("b", "llama-2-13b")
    plan = dict((x.model, x) for x, _ in placer().plan(snapshot([a, b]), {"a": 2.0, "b": 1.0}))
    left = POOL - align_up(a.weight_bytes) - align_up(b.weight_bytes) - 2 * R
    ka, kb = a.kv_bytes_per_token, b.kv_bytes_per_token  # 0.5 MiB and 0.78 MiB per token
    assert plan["a"].kv_bytes_per_gpu == int(left * ka / (ka + kb)) // CHUNK_BYTES * CHUNK_BYTES
    assert plan["b"].kv_bytes_per_gpu == int(left * kb / (ka + kb)) // CHUNK_BYTES * CHUNK_BYTES


def test_one_engine_per_model_on_one_node_of_at_most_8_gpus_at_tp_equal_to_its_mesh():
    models = [mv("a", "llama-2-7b"), mv("b", "llama-2-7b"), mv("c", "llama-2-13b"), mv("d", "llama-2-70b")]
    plan = placer().plan(snapshot(models, nodes=2, gpn=8), {"a": 5.0, "b": 3.5, "c": 3.0, "d": 2.7})
    acts = [a for a, _ in plan]
    assert sorted(a.model for a in acts) == ["a", "b", "c", "d"]
    for a in acts:
        assert max(a.gpus) < 8 and a.tp == len(a.gpus) and a.gpus[0] % len(a.gpus) == 0
    # engines on the same GPUs share them; the shares of a mesh sum to 1
    for g in range(8):
        on = [a for a in acts if g in a.gpus]
        assert not on or sum(a.compute_share for a in on) == pytest.approx(1.0)
    # the 70B needs 4 GPUs at least (weights 138 GB + reserve)
    assert len(next(a for a in acts if a.model == "d").gpus) >= 4


def test_no_split_has_more_meshes_than_models():
    # two models on a 8-GPU node: only splits of at most two meshes ([8] or [4, 4]) are allowed
    acts = [a for a, _ in placer().plan(snapshot([mv("a", "llama-2-7b"), mv("b", "llama-2-7b")], gpn=8),
                                        {"a": 1.0, "b": 1.0})]
    meshes = {a.gpus for a in acts}
    assert len(meshes) <= 2 and sum(len(m) for m in meshes) in (4, 8)


def test_a_model_that_fits_no_mesh_is_one_clear_error():
    with pytest.raises(UserError, match="fits no mesh"):
        placer(max_gpus=1).plan(snapshot([mv("d", "llama-2-70b")], gpn=8), {"d": 1.0})


def test_router_holds_a_request_when_the_engine_has_its_own_cap_in_flight():
    from tests.policies.snapshots import inst
    full = inst(1, "a", (0,), inflight=4)
    full = type(full)(**{**full.__dict__, "max_num_seqs": 4})
    assert MuxServeRouter().route("a", [full]) is None
    room = type(full)(**{**full.__dict__, "inflight": 3})
    assert MuxServeRouter().route("a", [room]) == 1


class _Fixed:
    """Initial placer returning fixed activations."""

    def __init__(self, acts):
        self.acts = acts

    def place(self, snap, rates):
        return list(self.acts)


def test_a_request_over_the_cap_waits_for_the_next_one_second_repoll():
    # cap 1: the first request (prefill 0.01 s, two decode steps of 0.01 s) ends at 0.03 s; the second
    # waits at the router until the retry tick at 1.0 s, then prefills: TTFT 1.01 s.
    wl = workload([0.0, 0.0], [10, 10], [3, 3])
    m = ServedModel("a", get_shape("llama-2-7b"), 1)
    b = Bundle("muxserve", MuxServeRouter(), NoAutoscaler(), scale_on_miss=False,
               initial=_Fixed([Activate("a", (0,), source="prewarmed", max_num_seqs=1)]))
    rec = Simulation(wl, {"a": m}, cluster(), cost(prefill_base_s=0.01), b).run()
    ttft = rec.first_token - wl.arrival_s
    assert ttft[0] == pytest.approx(0.01) and ttft[1] == pytest.approx(1.01)
    assert rec.finish[0] == pytest.approx(0.03)


class _Table:
    """Prefill slows 2x, decode 1.2x at any share; each busy neighbour adds 50 %."""

    def factor(self, phase, share, batch, busy_neighbours=0, tokens=None):
        return (2.0 if phase == "prefill" else 1.2) * (1 + 0.5 * busy_neighbours)


def _shared_pair():
    wl = workload([100.0], [10], [3], models=("a", "b"))
    models = {n: ServedModel(n, get_shape("llama-2-7b"), 1) for n in ("a", "b")}
    acts = [Activate(n, (0,), source="prewarmed", compute_share=0.5, kv_bytes_per_gpu=4 * GIB) for n in ("a", "b")]
    b = Bundle("mux", MuxServeRouter(), NoAutoscaler(), scale_on_miss=False, initial=_Fixed(acts), sharing=_Table())
    s = Simulation(wl, models, cluster(), cost(), b)
    s.activations.initial()
    return s, list(s.instances.values())


def test_prefill_and_decode_slow_down_differently_and_an_idle_neighbour_costs_nothing():
    s, (x, y) = _shared_pair()
    assert s.step_slowdown(x, "prefill", 1) == pytest.approx(2.0)
    assert s.step_slowdown(x, "decode", 8) == pytest.approx(1.2)
    y.engine.busy = True  # the neighbour is mid-step
    assert s.step_slowdown(x, "decode", 8) == pytest.approx(1.8)


def test_the_real_mps_table_slows_decode_less_than_prefill_at_half_the_sms():
    from warmsim.policies.muxserve import ColocationSlowdown
    t = ColocationSlowdown()
    assert 1.0 < t.factor("decode", 0.5, 32, 0) < t.factor("prefill", 0.5, 1, 0)
    assert t.factor("decode", 1.0, 32, 0) == 1.0
    assert t.factor("decode", 0.5, 32, 1) == t.factor("decode", 0.5, 32, 0)  # contention 0 by default
    assert ColocationSlowdown(contention=0.25).factor("decode", 0.5, 32, 2) == pytest.approx(
        t.factor("decode", 0.5, 32, 0) * 1.5)


def test_plan_rps_rescales_the_expected_rates_to_add_up_to_it():
    # a 3 req/s and b 1 req/s planned for 8 req/s in all: 6 and 2, proportions kept
    p = placer(plan_rps=8.0)
    assert p.planned_rates(["a", "b"], {"a": 3.0, "b": 1.0}) == {"a": 6.0, "b": 2.0}
    assert p.planned_rates(["a", "b", "c"], {"a": 3.0, "b": 1.0}) == {"a": 6.0, "b": 2.0, "c": 0.0}  # c: no requests
    assert p.planned_rates(["a", "b"], {"a": 0.0}) == {"a": 0.0, "b": 0.0}  # nothing to rescale
    assert placer().planned_rates(["a", "b"], {"a": 3.0, "b": 1.0}) == {"a": 3.0, "b": 1.0}  # None: as given
    with pytest.raises(UserError, match="expected rate of a must be a finite number >= 0"):
        p.planned_rates(["a"], {"a": -1.0})


def test_one_plan_for_every_run_rate_at_the_planned_rate():
    # one 7B on one GPU, tpt(bs) = bs / 0.337: planned at 20 req/s -> bs >= 6.74 -> 7 whatever the run's rate
    snap = snapshot([mv("a", "llama-2-7b")])
    for run_rate in (1.0, 10.0, 40.0):
        (act, d), = placer(plan_rps=20.0).plan(snap, {"a": run_rate})
        assert act.max_num_seqs == 7 and d["rate"] == 20.0
    (act, _), = placer().plan(snap, {"a": 40.0})  # planned at the run's own rate: bs >= 13.48 -> 14
    assert act.max_num_seqs == 14


def test_plan_rps_moves_a_two_model_plan_with_the_total_only():
    snap = snapshot([mv("a", "llama-2-7b"), mv("b", "llama-2-7b")], gpn=2)
    plan = lambda p, rates: [(a.model, a.gpus, a.max_num_seqs, d["rate"]) for a, d in p.plan(snap, rates)]  # noqa: E731
    fixed = placer(plan_rps=8.0)
    assert plan(fixed, {"a": 3.0, "b": 1.0}) == plan(fixed, {"a": 30.0, "b": 10.0})
    assert sorted(r for *_, r in plan(fixed, {"a": 3.0, "b": 1.0})) == [2.0, 6.0]
    assert plan(placer(), {"a": 3.0, "b": 1.0}) != plan(placer(), {"a": 30.0, "b": 10.0})


def test_plan_rps_is_split_by_the_recipes_shares_when_the_workload_states_them():
    # shares 0.6 / 0.3 / 0.1 of 20 req/s: 12 / 6 / 2, whatever the run's own proportions
    p = placer(plan_rps=20.0, rate_shares={"a": 0.6, "b": 0.3, "c": 0.1})
    assert p.planned_rates(["a", "b", "c"], {"a": 1.0, "b": 5.0}) == pytest.approx({"a": 12.0, "b": 6.0, "c": 2.0})
    # shares of a subset of the models: renormalised over the snapshot's models
    assert p.planned_rates(["a", "b"], {}) == pytest.approx({"a": 40 / 3, "b": 20 / 3})
    # a model the recipe does not name, plan_shares "run", or plan_rps None: the run's rates as before
    assert p.planned_rates(["a", "d"], {"a": 3.0, "d": 1.0}) == {"a": 15.0, "d": 5.0}
    assert placer(plan_rps=20.0, plan_shares="run", rate_shares={"a": 0.6, "b": 0.4}).planned_rates(
        ["a", "b"], {"a": 3.0, "b": 1.0}) == {"a": 15.0, "b": 5.0}
    assert placer(rate_shares={"a": 0.6, "b": 0.4}).planned_rates(["a", "b"], {"a": 3.0, "b": 1.0}) == \
        {"a": 3.0, "b": 1.0}


def test_the_builder_hands_the_placer_the_workloads_recipe_shares():
    from warmsim.policies.context import RunContext
    ctx = RunContext({}, None, NoSlowdown(), {"a": 0.75, "b": 0.25})
    assert MuxServeMeshPlacer().with_context(ctx).rate_shares == {"a": 0.75, "b": 0.25}


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "15"])
def test_a_bad_plan_rps_is_one_clear_error(bad):
    with pytest.raises(UserError, match=r"^MuxServeMeshPlacer.plan_rps: got"):
        placer(plan_rps=bad)


def test_a_bad_plan_shares_is_one_clear_error():
    with pytest.raises(UserError, match=r"^MuxServeMeshPlacer.plan_shares: got 'mean'; allowed: one of recipe, run"):
        placer(plan_shares="mean")


def test_the_default_muxserve_system_plans_for_the_headline_rate_by_the_recipes_shares():
    from warmsim.experiments.builder import system_config
    assert system_config("muxserve").initial.plan_rps == 15.0
    assert system_config("muxserve").initial.plan_shares == "recipe"
    assert MuxServeMeshPlacer().plan_rps == 15.0 and MuxServeMeshPlacer().plan_shares == "recipe"


def test_the_default_muxserve_system_holds_one_node_and_one_engine_per_model():
    from hydra import compose, initialize_config_dir

    from warmsim.experiments.builder import CONF_DIR, build_bundle, build_setup, system_cluster, system_config
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=["workload.duration_s=60", "cost=constant"])
        setup = build_setup(cfg)
        scfg = system_config("muxserve")
        bundle = build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg)
    # the recipe's (j+1)^-0.5 shares reach the placer through the builder's context
    assert bundle.initial.rate_shares == pytest.approx(dict(zip(setup.workload.models, setup.workload.meta["shares"])))
    sim = Simulation(setup.workload, setup.models, system_cluster(scfg, setup.cluster), setup.cost, bundle,
                     setup.engine, setup.sim)
    sim.activations.initial()
    insts = list(sim.instances.values())
    assert len(sim.cluster.gpus) == 8
    assert sorted(i.model.name for i in insts) == sorted(setup.models)
    assert all(i.max_num_seqs is not None and i.max_num_seqs >= 1 for i in insts)
    assert np.all([max(i.gpus) < 8 for i in insts])
