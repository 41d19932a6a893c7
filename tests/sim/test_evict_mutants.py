"""Evicting a prewarmed replica inside the simulator (``Weights.evict``, sim/weights.py), by hand: a
replica still loading has its copy cancelled and its GPU's background-copy count released once; a
ready one releases nothing more; memory, the GPU's replica set, the policies' snapshot, the eviction
counter and the timeline event all follow. Written for the mutants of ``evict`` that the other
eviction tests left alive (docs/testing.md). Sizes as in tests/sim/test_reserve_evict.py.
"""

import gc

import pytest

from tests.sim.helpers import cluster, cost, model, workload
from tests.sim.test_reserve_evict import SHARD, bundle
from warmsim.policies.types import Prewarm
from warmsim.sim.engine import EngineSpec
from warmsim.sim.errors import PlanError
from warmsim.sim.simulation import Simulation


def sim_with_a():
    # Two GPUs: instance a (7B) serves on GPU 0; GPU 1 (72 GiB) is free for replicas of b.
    w = workload([100.0], [10], [1], models=("a", "b"))
    s = Simulation(w, {m: model(m) for m in "ab"}, cluster(gpus=2), cost(), bundle(models=("a", "b")),
                   EngineSpec(block_size=16))
    s.activations.initial()
    return s


def evictions(s):
    return [(round(r[0], 9), r[3], r[6]) for r in s.recorder.timeline if r[1] == "replica" and r[5] == "evicted"]


def test_evicting_a_loading_replica_cancels_its_copy_and_releases_the_gpu_once():
    s = sim_with_a()
    gpu = s.cluster.gpus[1]
    free0 = gpu.mem.free_bytes
    s.apply_prewarm(Prewarm("b", (1,)))
    s.env.run(until=0.5)  # 13.5 GB at 10 GB/s: still loading
    (rid, rep), = s.replicas.items()
    assert gpu.background_flows == 1 and len(s.cluster.net.flows) == 1 and gpu.mem.free_bytes == free0 - SHARD
    assert s.evict(rid) == SHARD
    assert rep.evicted is True and rep.copy_released is True
    assert gpu.background_flows == 0 and s.cluster.net.flows == []
    assert gpu.mem.free_bytes == free0 and gpu.replicas == set() and s.replicas == {}
    snap = s.snapshot()
    assert snap.replicas == () and snap.gpus[1].replicas == ()
    assert evictions(s) == [(0.5, "b", "")]
    s.env.run(until=5.0)
    gc.collect()  # the stalled load's generator may be closed now: it must not release the GPU again
    assert gpu.background_flows == 0 and not rep.ready.triggered
    assert not [r for r in s.recorder.timeline if r[1] == "replica" and r[5] == "ready"]
    assert s.recorder.counters["b"]["evictions"] == 1


def test_evicting_a_ready_replica_releases_no_copy_and_counts_every_eviction():
    s = sim_with_a()
    gpu = s.cluster.gpus[1]
    for t in (1, 2):
        s.apply_prewarm(Prewarm("b", (1,)))
        s.env.run(until=3.0 * t)  # loaded after 1.35 s
        (rid, rep), = s.replicas.items()
        assert rep.ready.triggered and gpu.background_flows == 0
        s.evict(rid, "placement")
        assert gpu.background_flows == 0 and rep.evicted is True
    assert s.recorder.counters["b"]["evictions"] == 2
    assert evictions(s) == [(3.0, "b", "placement"), (6.0, "b", "placement")]


def test_evicting_an_unknown_replica_is_an_error():
    with pytest.raises(PlanError, match=r"^Evict: no replica 99$"):
        sim_with_a().evict(99)
