"""The extension tables of the simulator (docs/extending.md): every weight source and memory-switch
mechanism in its table works through the same code paths, and a new one is one table entry.

Cold starts in the first-token tests cost nothing but the transfer and the memory switch (no process
start, engine init, load overhead or prefill), so a request's first token comes exactly when its
instance is ready. Llama-2-7B at TP1: a shard of 13,478,395,904 B.
"""

from dataclasses import dataclass, replace

import pytest

from tests.sim.helpers import GIB, cost, model, ondemand, workload
from warmsim.sim import cost as cost_mod
from warmsim.sim.cluster import Cluster, ClusterSpec
from warmsim.sim.engine import EngineSpec
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.sim.simulation import Simulation
from warmsim.sim.sources import SOURCES
from warmsim.sim.startup import StartPath, startup_breakdown

SHARD1 = 13_478_395_904


def spec(nodes=2, gpus=2):
    return ClusterSpec(nodes=nodes, gpus_per_node=gpus, gpu_hbm_bytes=80 * GIB, memory_fraction=0.9,
                       pcie_pinned_bw=10e9, pcie_pageable_bw=2.5e9, host_mem_bw=100e9, ssd_bw=5e9,
                       nic_bw=2e9, nvlink_bw=300e9, page_cache_read_bw=3e9)


def test_cost_lists_come_from_the_source_table():
    assert cost_mod.SOURCES == tuple(SOURCES)
    assert set(cost_mod.PEER_SOURCES) == {n for n, s in SOURCES.items() if s.peer}
    assert set(cost_mod.STORAGE_SOURCES) == {n for n, s in SOURCES.items() if s.storage}


#: Each shipped source's path onto GPU 0 (node 0) of ``spec()`` (2 nodes x 2 GPUs), written out by hand
#: from docs/simulator.md "Loads": the links by name, and the flow's own ceiling in B/s (a peer copies
#: from GPU 1, same node, or GPU 2, node 1). Page cache: 1 / (1 / 3e9 + 1 / 2.5e9) = 1.3636e9.
SOURCE_PATHS = {
    "host_pinned": (("n0.host_mem", "g0.pcie"), float("inf")),
    "host_pageable": (("n0.host_mem", "g0.pcie"), 2.5e9),
    "page_cache": (("n0.host_mem", "g0.pcie"), 1 / (1 / 3e9 + 1 / 2.5e9)),
    "ssd": (("n0.ssd", "g0.pcie"), float("inf")),
    "remote": (("n0.nic", "g0.pcie"), float("inf")),
    "sleep_backup": (("n0.host_mem", "g0.pcie"), float("inf")),  # a level-1 sleeper's own pinned backup
    "peer_nvlink": (("g1.nvlink_tx", "g0.nvlink_rx"), float("inf")),
    "peer_rdma": (("n1.nic_tx", "n0.nic", "g0.pcie"), float("inf")),
    "prewarmed": None,  # nothing moves
}


def test_every_shipped_source_crosses_the_links_its_tier_has():
    import simpy
    assert set(SOURCE_PATHS) == set(SOURCES)  # a new shipped source gets its row here
    c = Cluster(simpy.Environment(), spec())
    for name, want in SOURCE_PATHS.items():
        src = SOURCES[name]
        peer_gpu = (1 if src.same_node else 2) if src.peer else None
        if want is None:
            with pytest.raises(KeyError):
                c.path(name, 0, peer_gpu)
            continue
        links, cap = c.path(name, 0, peer_gpu)
        assert (tuple(link.name for link in links), cap) == (want[0], pytest.approx(want[1])), name


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
        b = startup_breakdown(cost(), model(), name, StartPath(), EngineSpec(), memswitch=ms,
                              bandwidth=spec().link_bandwidth())
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

    def ceiling(self, bandwidth):
        return 1e9

    def path(self, cluster, gpu, peer_gpu=None):
        g = cluster.gpus[gpu]
        return (cluster.nodes[g.node].ssd, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


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

    def kv_alloc_s(self, cost, kv_bytes, kv_prewarm):
        return 0.0

    def before_load_s(self, cost, shard_bytes, sync_free_s):
        return 2.0

    def after_load_s(self, cost, shard_bytes, transfer_s):
        return None

    def on_adopt_s(self, cost, sync_free_s):
        return None


def test_a_new_memory_switch_is_one_table_entry(monkeypatch):
    monkeypatch.setitem(MEMSWITCHES, "fixed_prep", FixedPrep())
    base = first_token("host_pinned", "vmm_pool")  # vmm_map_s defaults to 0: nothing added
    assert base == pytest.approx(SHARD1 / 10e9, rel=1e-9)
    assert first_token("host_pinned", "fixed_prep") == pytest.approx(base + 2.0, rel=1e-9)
    assert startup_breakdown(cost(), model(), "ssd", StartPath(), EngineSpec(), memswitch="fixed_prep",
                             bandwidth=spec().link_bandwidth()).memory_s == 2.0


# ---- the estimate is the simulator's lone start, for every source and start path ------------------
STAGED = dict(process_start=1.5, engine_process=2.0, engine_prepare=0.3, tp_comm=0.2, engine_init=0.7,
              cuda_graphs=0.4, load_overhead=0.05, alloc=0.01, vmm_map_per_gib=0.02, prefill_base_s=0.01,
              prefill_per_token_s=1e-6)
PATHS = [StartPath(), StartPath(device_prewarm=True, engine_prewarm=True, profile_run=False),
         StartPath(True, True, comm_prewarm=True, profile_run=False, kv_prewarm=False, overlap_load=True,
                   ready_poll_s=0.05),
         StartPath(True, True, overlap_load=True, ready_poll_s=0.7),  # the load outlasts engine_prepare or not
         StartPath(prefetch=True), StartPath(True, True, profile_run=False, prefetch=True)]  # the fetch from the start


def lone_start(source: str, memswitch: str, path: StartPath, sp: ClusterSpec, engine: EngineSpec):
    """First token of one 10-token request on an idle one-GPU cluster under on-demand starts."""
    b = replace(ondemand(source=source), memswitch=memswitch, **{f: getattr(path, f) for f in path.__dataclass_fields__})
    s = Simulation(workload([0.0], [10], [1]), {"a": model()}, sp, cost(**STAGED), b, engine_spec=engine)
    return s.run().requests_table().first_token_s[0]


@pytest.mark.parametrize("name", [n for n, s in SOURCES.items() if s.storage])
@pytest.mark.parametrize("memswitch", list(MEMSWITCHES))
@pytest.mark.parametrize("path", PATHS)
def test_the_estimate_is_the_simulators_lone_start(name, memswitch, path):
    """Every storage source in the table (its per-flow ceiling included), every memory switch, start
    paths with and without each flag: ``startup_breakdown`` plus the first prefill is the first token."""
    sp, engine = spec(nodes=1, gpus=1), EngineSpec(max_batched_tokens=4096)
    c, m = cost(**STAGED), model()
    block = engine.block_size * m.kv_bytes_per_token_per_gpu
    kv = (sp.gpu_pool_bytes - m.shard_bytes) // block * block
    bd = startup_breakdown(c, m, name, path, engine, memswitch=memswitch, bandwidth=sp.link_bandwidth(), kv_bytes=kv)
    assert lone_start(name, memswitch, path, sp, engine) == pytest.approx(bd.total_s + c.prefill_s(m, 10, 1),
                                                                          rel=1e-12)


def test_a_source_ceiling_reaches_the_estimate(monkeypatch):
    monkeypatch.setitem(SOURCES, "ssd_throttled", ThrottledSSD())
    sp = spec(nodes=1, gpus=1)
    bd = startup_breakdown(cost(), model(), "ssd_throttled", StartPath(), EngineSpec(), bandwidth=sp.link_bandwidth())
    assert bd.transfer_s == pytest.approx(SHARD1 / 1e9, rel=1e-12)
    assert bd.transfer_s == pytest.approx(first_token("ssd_throttled"), rel=1e-12)


def test_the_router_poll_never_waits_a_negative_time():
    """An engine up within the tolerance after a poll is found at that poll (the property test once met
    elapsed = 0.05 x k + 1.8e-15, which gave a negative SimPy delay)."""
    from warmsim.sim.startup import poll_delay_s
    assert poll_delay_s(0.15000000000000002, 0.05) == 0.0
    assert poll_delay_s(0.12, 0.05) == pytest.approx(0.03)
    assert poll_delay_s(0.1 + 3 * 0.05 + 1e-15, 0.05) >= 0.0
