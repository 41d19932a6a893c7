"""The extension tables of the simulator (docs/extending.md): every weight source and memory-switch
mechanism in its table works through the same code paths, and a new one is one table entry.

Cold starts here cost nothing but the transfer and the memory switch (no process start, engine
init, load overhead or prefill), so a request's first token comes exactly when its instance is ready.
Llama-2-7B at TP1: a shard of 13,478,395,904 B.
"""

from dataclasses import dataclass

import pytest

from warmsim.sim import cost as cost_mod
from warmsim.sim.cluster import Cluster, ClusterSpec
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.sim.sources import SOURCES
from warmsim.sim.startup import SOURCE_PATHS, startup_breakdown
from warmsim.sim.simulation import Simulation
from tests.sim.helpers import GIB, cost, model, ondemand, workload

SHARD1 = 13_478_395_904


def spec(nodes=2, gpus=2):
    return ClusterSpec(nodes=nodes, gpus_per_node=gpus, gpu_hbm_bytes=80 * GIB, memory_fraction=0.9,
                       pcie_pinned_bw=10e9, pcie_pageable_bw=2.5e9, host_mem_bw=100e9, ssd_bw=5e9,
                       nic_bw=2e9, nvlink_bw=300e9)


def test_cost_lists_come_from_the_source_table():
    assert cost_mod.SOURCES == tuple(SOURCES)
    assert set(cost_mod.PEER_SOURCES) == {n for n, s in SOURCES.items() if s.peer}
    assert set(cost_mod.STORAGE_SOURCES) == {n for n, s in SOURCES.items() if s.storage}
    assert SOURCE_PATHS == {n: s.link_kinds for n, s in SOURCES.items()}


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_has_a_path_and_a_startup_estimate(name):
    import simpy
    src = SOURCES[name]
    c = Cluster(simpy.Environment(), spec())
    if src.link_kinds is None:
        with pytest.raises(KeyError):
            src.path(c, 0)
    else:
        peer_gpu = (1 if src.same_node else 2) if src.peer else None
        links, cap = src.path(c, 0, peer_gpu)
        assert links and cap > 0
        assert c.path(name, 0, peer_gpu) == (links, cap)
    for ms in MEMSWITCHES:
        b = startup_breakdown(cost(), model(), name, memswitch=ms)
        assert b.total_s >= 0 and (b.transfer_s == 0) == (src.link_kinds is None)


def first_token(source="host_pinned", memswitch="free_malloc"):
    w = workload([0.0], [10], [1])
    c = cost(process_start=0.0, engine_init=0.0, prefill_base_s=0.0, load_overhead=0.0, alloc=0.0)
    b = ondemand(source=source)
    b.memswitch = memswitch
    s = Simulation(w, {"a": model()}, spec(nodes=1, gpus=1), c, b)
    return s.run().requests_table().first_token_s[0]


@dataclass(frozen=True)
class ThrottledSSD:
    """A new source for the test: the node's SSD link with a per-flow ceiling of 1 GB/s."""

    name: str = "ssd_throttled"
    storage: bool = True
    peer: bool = False
    same_node: bool | None = None
    reads_host_cache: bool = False
    link_kinds: tuple = ("ssd_read", "pcie_h2d_pinned")

    def path(self, cluster, gpu, peer_gpu=None):
        g = cluster.gpus[gpu]
        return (cluster.nodes[g.node].ssd, g.pcie), 1e9


def test_a_new_weight_source_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(SOURCES, "ssd_throttled", ThrottledSSD())
    assert first_token("ssd") == pytest.approx(SHARD1 / 5e9, rel=1e-9)  # the SSD link sets it
    assert first_token("ssd_throttled") == pytest.approx(SHARD1 / 1e9, rel=1e-9)  # the ceiling does


@dataclass(frozen=True)
class FixedPrep:
    """A new mechanism for the test: two seconds of preparation before every cold load."""

    name: str = "fixed_prep"

    def sync_free_s(self, cost, freed_bytes):
        return 0.0

    def kv_alloc_s(self, cost, kv_bytes, engine_prewarm):
        return 0.0

    def before_load_s(self, cost, shard_bytes, kv_bytes, sync_free_s, engine_prewarm):
        return 2.0

    def after_load_s(self, cost, shard_bytes, transfer_s):
        return None

    def on_adopt_s(self, cost, kv_bytes, sync_free_s, engine_prewarm):
        return None

    def prep_s(self, cost, shard_bytes, transfer_s):
        return 2.0


def test_a_new_memory_switch_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(MEMSWITCHES, "fixed_prep", FixedPrep())
    base = first_token("host_pinned", "vmm_pool")  # vmm_map_s defaults to 0: nothing added
    assert base == pytest.approx(SHARD1 / 10e9, rel=1e-9)
    assert first_token("host_pinned", "fixed_prep") == pytest.approx(base + 2.0, rel=1e-9)
    assert startup_breakdown(cost(), model(), "ssd", memswitch="fixed_prep").memory_s == 2.0
