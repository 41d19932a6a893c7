"""MuxServe baseline: colocated placement (shares, memory split, errors), slowdown, router."""

from __future__ import annotations

import pytest

from warmsim.policies.muxserve import ColocationSlowdown, MuxServePlacer, MuxServeRouter, colocated_step_time
from warmsim.policies.types import ACTIVE, GPUView, InstanceView, ModelView, Snapshot
from warmsim.sim.catalog import get_shape
from warmsim.sim.errors import UserError
from warmsim.sim.models import CHUNK_BYTES, ServedModel

GIB = 1 << 30
MIB = 1 << 20


def snap(models: dict[str, tuple[int, int]], *, nodes=1, gpn=1, cap=80 * GIB) -> Snapshot:
    """``models``: name -> (weight bytes, tp)."""
    gpus = tuple(GPUView(id=i, node=i // gpn, capacity_bytes=cap, used_bytes=0) for i in range(nodes * gpn))
    mv = {n: ModelView(n, w, tp, w // tp) for n, (w, tp) in models.items()}
    return Snapshot(time_s=0.0, gpus_per_node=gpn, gpus=gpus, models=mv)


def by_model(plan):
    return {e.model: e for e in plan.engines}


def assert_fits(plan, s: Snapshot) -> None:
    """On every GPU the plan's compute shares add up to at most 1 and its engines' weights and KV fit
    the free memory (what the simulator checks when it applies the plan)."""
    for gpu in s.gpus:
        on = [e for e in plan.engines if gpu.id in e.gpus]
        assert sum(e.compute_share for e in on) <= 1.0 + 1e-9, gpu.id
        assert sum(s.models[e.model].shard_bytes + e.kv_bytes_per_gpu for e in on) <= gpu.free_bytes, gpu.id


def test_two_equal_models_on_one_gpu_split_evenly():
    s = snap({"a": (20 * GIB, 1), "b": (20 * GIB, 1)})
    p = MuxServePlacer({"a": MIB, "b": MIB}, min_kv_tokens=1024).plan(s, {"a": 1.0, "b": 1.0})
    e = by_model(p)
    assert e["a"].compute_share == e["b"].compute_share == 0.5
    # 80 - 2 x 20 weights - 2 x 1 GiB minimum KV = 38 GiB, split evenly on top of the minimum
    assert e["a"].kv_bytes_per_gpu == e["b"].kv_bytes_per_gpu == 20 * GIB
    acts = p.activates()
    assert [a.source for a in acts] == ["prewarmed", "prewarmed"] and all(a.gpus == (0,) for a in acts)
    assert_fits(p, s)


def test_unequal_models_share_by_rate_times_size_and_kv_by_rate_times_kv():
    s = snap({"a": (20 * GIB, 1), "b": (10 * GIB, 1)})
    p = MuxServePlacer({"a": MIB, "b": MIB // 2}, min_kv_tokens=1024).plan(s, {"a": 3.0, "b": 1.0})
    e = by_model(p)
    # compute demand 3 x 20 : 1 x 10 = 6 : 1
    assert e["a"].compute_share == pytest.approx(6 / 7, abs=1e-6)
    assert e["b"].compute_share == pytest.approx(1 / 7, abs=1e-6)
    assert e["a"].compute_share + e["b"].compute_share <= 1.0
    # left = 80 - 30 - 1 - 0.5 = 48.5 GiB; KV weights 3 x 1 MiB : 1 x 0.5 MiB = 6 : 1
    assert e["a"].kv_bytes_per_gpu == pytest.approx(1 * GIB + 48.5 * GIB * 6 / 7, abs=CHUNK_BYTES)
    assert e["b"].kv_bytes_per_gpu == pytest.approx(0.5 * GIB + 48.5 * GIB / 7, abs=CHUNK_BYTES)
    assert e["a"].kv_bytes_per_gpu % CHUNK_BYTES == 0
    assert 30 * GIB + e["a"].kv_bytes_per_gpu + e["b"].kv_bytes_per_gpu <= 80 * GIB


def test_block_split_gives_memory_in_proportion_to_kv_block_size():
    s = snap({"a": (20 * GIB, 1), "b": (10 * GIB, 1)})
    p = MuxServePlacer({"a": MIB, "b": MIB // 2}, min_kv_tokens=1024, kv_split="block").plan(s, {"a": 3.0, "b": 1.0})
    e = by_model(p)
    assert e["a"].kv_bytes_per_gpu == pytest.approx(80 * GIB * 2 / 3 - 20 * GIB, abs=CHUNK_BYTES)
    assert e["b"].kv_bytes_per_gpu == pytest.approx(80 * GIB / 3 - 10 * GIB, abs=CHUNK_BYTES)
    starved = snap({"a": (60 * GIB, 1), "b": (10 * GIB, 1)})
    with pytest.raises(UserError, match="block"):
        MuxServePlacer({"a": MIB // 2, "b": MIB}, min_kv_tokens=1024, kv_split="block").plan(starved, {"a": 1, "b": 1})


def test_min_share_floor_for_an_idle_model():
    s = snap({"a": (20 * GIB, 1), "b": (20 * GIB, 1)})
    e = by_model(MuxServePlacer({"a": MIB, "b": MIB}, min_share=0.1).plan(s, {"a": 10.0, "b": 0.0}))
    assert e["b"].compute_share == pytest.approx(0.1, abs=1e-6)
    assert e["a"].compute_share == pytest.approx(0.9, abs=1e-6)


def test_popular_model_gets_more_engines_unpopular_one_colocates():
    s = snap({"a": (10 * GIB, 1), "b": (10 * GIB, 1)}, gpn=4)
    p = MuxServePlacer({"a": MIB, "b": MIB}).plan(s, {"a": 9.0, "b": 1.0})
    a_engines = [e for e in p.engines if e.model == "a"]
    (b,) = [e for e in p.engines if e.model == "b"]
    # a's fair part is 3.6 GPUs -> 4 engines asking 0.9 each; b's 0.4 GPU -> one engine asking 0.4
    assert len(a_engines) == 4 and {e.gpus for e in a_engines} == {(0,), (1,), (2,), (3,)}
    assert b.demand_share == pytest.approx(0.4)
    shared = [e for e in a_engines if e.gpus == b.gpus][0]
    # over-asked GPU (0.9 + 0.4): min 0.1 each + 0.8 split 0.8 : 0.3
    assert shared.compute_share == pytest.approx(0.1 + 0.8 * 0.8 / 1.1, abs=1e-6)
    assert b.compute_share == pytest.approx(0.1 + 0.8 * 0.3 / 1.1, abs=1e-6)
    assert all(e.compute_share == 1.0 for e in a_engines if e is not shared)
    assert_fits(p, s)


def test_warmserve_setup_respects_shares_and_memory():
    served = [ServedModel("a", get_shape("llama-2-7b")), ServedModel("b", get_shape("llama-2-7b")),
              ServedModel("c", get_shape("llama-2-13b"), 2), ServedModel("d", get_shape("llama-2-70b"), 4)]
    s = snap({m.name: (m.weight_bytes, m.tp) for m in served}, nodes=2, gpn=8)
    s = Snapshot(time_s=0.0, gpus_per_node=8, gpus=s.gpus,
                 models={m.name: ModelView(m.name, m.weight_bytes, m.tp, m.shard_bytes) for m in served})
    kv = {m.name: m.shape.kv_bytes_per_token for m in served}
    for alpha in (0.5, 2.0):
        rates = {m.name: 10 * (j + 1) ** -alpha for j, m in enumerate(served)}
        p = MuxServePlacer(kv).plan(s, rates)
        assert_fits(p, s)
        assert {e.model for e in p.engines} == {"a", "b", "c", "d"}
        for e in p.engines:
            assert len(e.gpus) == s.models[e.model].tp and len({g // 8 for g in e.gpus}) == 1
            assert e.compute_share >= 0.1 - 1e-9


def test_unfit_model_raises_user_error_naming_model_and_memory():
    with pytest.raises(UserError, match=r"'big'.*needs 102\.00 GiB.*shard 100\.00 GiB.*most left .* 80\.00 GiB"):
        MuxServePlacer({"big": MIB}).plan(snap({"big": (100 * GIB, 1)}), {"big": 1.0})
    with pytest.raises(UserError, match=r"'[ab]'.*after placing [ab]"):
        MuxServePlacer({"a": MIB, "b": MIB}).plan(snap({"a": (50 * GIB, 1), "b": (50 * GIB, 1)}), {"a": 1, "b": 1})


def test_bad_inputs_are_user_errors():
    s = snap({"a": (10 * GIB, 2)})
    with pytest.raises(UserError, match="tp 2"):
        MuxServePlacer({"a": MIB}).plan(s, {"a": 1.0})
    s1 = snap({"a": (10 * GIB, 1)})
    with pytest.raises(UserError, match="unknown"):
        MuxServePlacer({"a": MIB}).plan(s1, {"zz": 1.0})
    with pytest.raises(UserError, match="kv_bytes_per_token"):
        MuxServePlacer({}).plan(s1, {"a": 1.0})
    with pytest.raises(UserError):
        MuxServePlacer({"a": MIB}, kv_split="other")


def test_colocated_step_time_numbers():
    # alone with the whole GPU: the isolated time, whatever the contention, while no neighbour is busy
    assert colocated_step_time(0.02, "decode", 1.0, 8, 0, 0.3) == pytest.approx(0.02)
    assert colocated_step_time(0.02, "decode", 1.0, 8, 1, 0.1) == pytest.approx(0.022)
    half = colocated_step_time(0.02, "decode", 0.5, 8, 0, 0.0)
    assert 0.02 < half < 0.04  # MuxServe's profile: decode slows far less than 1/share
    assert colocated_step_time(0.02, "decode", 0.5, 8, 1, 0.1) == pytest.approx(half * 1.1)
    assert ColocationSlowdown(contention=0.1).step_s(0.02, "decode", 0.5, 8, 1) == pytest.approx(half * 1.1)
    for bad in [(0.02, "decode", 0.0, 8, 0, 0.0), (0.02, "decode", 1.5, 8, 0, 0.0),
                (0.02, "decode", 0.5, 8, -1, 0.0), (0.02, "decode", 0.5, 8, 0, -0.1)]:
        with pytest.raises(ValueError):
            colocated_step_time(*bad)


def test_router_least_loaded_with_max_num_seqs():
    engines = [InstanceView(id=i, model="a", gpus=(i,), state=ACTIVE, inflight=n, created_s=0.0)
               for i, n in enumerate([3, 2, 2])]
    assert MuxServeRouter(max_num_seqs=3).route("a", engines) == 1
    assert MuxServeRouter(max_num_seqs=2).route("a", engines) is None
    assert MuxServeRouter(max_num_seqs=2, per_model={"a": 4}).route("a", engines) == 1
