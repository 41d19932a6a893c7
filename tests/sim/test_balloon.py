"""KV memory that grows and shrinks per engine (``sim/mechanisms/balloon.py``, kvcached), by hand.

Set-up: Llama-2-7B engines (a 256-token KV block is 128 MiB), a reserve of 20 MiB (one block stays
mapped ahead of need), VMM handles at 0.2 s per GiB, prefill 0.05 s, decode steps 0.01 s, shrink and
refill passes every 0.1 s. Engines exist from time 0 with a compute share of 1/2 (they may share a GPU;
steps slow only when a neighbour computes at the same time, Prism's time-slicing).
"""

import pytest

from tests.sim.helpers import cluster, cost, model, workload
from warmsim.policies.autoscale import NoAutoscaler
from warmsim.policies.bundle import Bundle
from warmsim.policies.prism import TimeSlicing
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.types import Activate
from warmsim.sim.mechanisms.balloon import BalloonKnobs
from warmsim.sim.memory import KV
from warmsim.sim.simulation import Simulation

US = 1e-6
BLOCK = 256 * model().kv_bytes_per_token_per_gpu  # 128 MiB
MAP_PER_BLOCK = 0.2 * BLOCK / 2**30  # 0.025 s


def sim(arrivals, prompts, outputs, models=("a",), model_idx=None, hbm_gib=80, frac=0.9) -> Simulation:
    b = Bundle("prism-like", LeastLoadedRouter(), NoAutoscaler(), memswitch="kvcached", scale_on_miss=False,
               sharing=TimeSlicing(), extras={"kv_balloon": BalloonKnobs()})
    c = cost(vmm_alloc_per_gib=0.2, prefill_base_s=0.05)
    w = workload(arrivals, prompts, outputs, models=models, model_idx=model_idx)
    s = Simulation(w, {m: model(m) for m in models}, cluster(hbm_gib=hbm_gib, frac=frac), c, b)
    for m in models:
        s.apply_activate(Activate(m, (0,), compute_share=0.5), ready_at_start=True)
    return s


def kv_series(rec, gpu=0) -> list[tuple[float, int]]:
    """KV blocks held on ``gpu`` after each instant's changes."""
    tl = rec.timeline_table()
    m = tl[(tl.kind == "memory") & (tl.gpu == gpu)].groupby("time_s").kv_bytes.last()
    return [(round(t, 6), int(v // BLOCK)) for t, v in m.items()]


def test_an_engine_maps_only_its_reserve_at_first_and_its_range_is_the_gpu():
    s = sim([1.0], [10], [1])
    (inst,) = s.instances.values()
    e = inst.engine
    assert s.cluster.gpus[0].mem.bytes_of(KV, inst.id) == BLOCK  # 20 MiB rounds up to one block
    assert e.total_blocks == (s.cluster.gpus[0].mem.capacity_bytes - model().shard_bytes) // BLOCK
    assert e.free_blocks == 1 and e.reserved == e.total_blocks - 1


def test_a_prompt_maps_its_blocks_and_its_prefill_waits_for_them_then_they_go_back():
    # 1000 tokens + 1 need 4 blocks: 1 is mapped, 3 are mapped on demand (0.075 s) before the prefill.
    # A second request at 5 s keeps the run going.
    rec = sim([1.0, 5.0], [1000, 10], [1, 1]).run()
    assert rec.requests_table().ttft_s[0] == pytest.approx(0.05 + 3 * MAP_PER_BLOCK, abs=US)
    # KV held on GPU 0 in blocks: 1 from the start, 4 at the admission; the 1.1-s pass refills the
    # reserve in the background (all 4 in use by the prefill): 5; the request ended at 1.125 s, so the
    # 1.2-s pass unmaps all but the reserve: 1.
    assert kv_series(rec) == [(0.0, 1), (1.0, 4), (1.1, 5), (1.2, 1)]


def test_growth_during_decode_is_not_charged():
    # 250 + 1 tokens fit the mapped block; at 256 tokens of context the decode run needs a second one.
    rec = sim([1.0], [250], [20]).run()
    req = rec.requests_table()
    assert req.ttft_s[0] == pytest.approx(0.05, abs=US)
    assert req.finish_s[0] == pytest.approx(1.0 + 0.05 + 19 * 0.01, abs=US)
    assert max(n for _, n in kv_series(rec)) >= 2  # it did grow (the background refill of the reserve)


def test_engines_sharing_a_gpu_draw_on_one_pool():
    # A pool of two shards and 6 blocks: each engine maps its 1-block reserve, 4 blocks are free.
    # a's prompt takes 3 of them at 1 s; b's, at the same time, gets the last one and still lacks 2: it
    # waits (nothing runs there; the short grant costs nothing on its path). At the 1.1-s pass a is still
    # prefilling; at the 1.2-s pass a's blocks go back (a ended at 1.125 s) and b's spare one too, b maps
    # 3 (0.075 s) and prefills.
    shard = model().shard_bytes
    pool = 2 * shard + 6 * BLOCK
    s = sim([1.0, 1.0], [1000, 1000], [1, 1], models=("a", "b"), model_idx=[0, 1], hbm_gib=pool / 2**30, frac=1.0)
    rec = s.run()
    req = rec.requests_table()
    assert req.first_token_s[0] == pytest.approx(1.0 + 0.05 + 3 * MAP_PER_BLOCK, abs=US)
    assert req.first_token_s[1] == pytest.approx(1.2 + 0.05 + 3 * MAP_PER_BLOCK, abs=US)
    assert (req.status == "completed").all()
    assert max(n for _, n in kv_series(rec)) == 6  # never more than the pool
    assert "asks the GPU pool could not fully meet" in s.mechanism_lines()[0]
