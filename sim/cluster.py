"""The hardware: nodes with GPUs, host memory, an SSD and a NIC, joined by links that flows share."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from warmsim.sim.flows import FlowNetwork, Link
from warmsim.sim.memory import GPUMemory
from warmsim.sim.sources import SOURCES

GIB = 1 << 30


@dataclass(frozen=True)
class ClusterSpec:
    """Sizes and link capacities of a homogeneous cluster (bytes and bytes/s).

    ``host_cache_bytes`` is each node's pinned host-memory checkpoint cache; ``None`` means every
    checkpoint is already in host memory (an unbounded cache).
    """

    nodes: int
    gpus_per_node: int
    gpu_hbm_bytes: int
    memory_fraction: float
    pcie_pinned_bw: float
    pcie_pageable_bw: float
    host_mem_bw: float
    ssd_bw: float
    nic_bw: float
    nvlink_bw: float
    host_cache_bytes: int | None = None
    host_cache_preload: bool = False  # a bounded cache starts holding every checkpoint that fits
    #: Reading a checkpoint file from the page cache into pageable memory, per flow (the
    #: ``page_cache`` source); unbounded unless set.
    page_cache_read_bw: float = float("inf")

    @property
    def n_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def gpu_pool_bytes(self) -> int:
        """Bytes of each GPU the memory pool may hand out."""
        return int(self.gpu_hbm_bytes * self.memory_fraction)

    def link_bandwidth(self) -> dict[str, float]:
        return {"pcie_h2d_pinned": self.pcie_pinned_bw, "pcie_h2d_pageable": self.pcie_pageable_bw,
                "pcie_d2h": self.pcie_pinned_bw, "host_mem": self.host_mem_bw, "ssd_read": self.ssd_bw,
                "nic": self.nic_bw, "nvlink": self.nvlink_bw, "page_cache_read": self.page_cache_read_bw}


class HostCache:
    """A node's pinned host-memory checkpoint cache, least recently used out first."""

    def __init__(self, capacity: int | None, everything: bool):
        self.capacity = capacity
        self.everything = everything  # unbounded: every checkpoint is there
        self.entries: OrderedDict[str, int] = OrderedDict()
        self.changed = False  # its set of models changed since a snapshot last read it
        self.pins: dict[str, int] = {}  # checkpoints an instance start is about to read: never evicted

    def __contains__(self, model: str) -> bool:
        return self.everything or model in self.entries

    def touch(self, model: str, nbytes: int) -> None:
        """Record a use of ``model`` (inserting it, evicting least recently used ones to fit)."""
        if self.everything:
            return
        if model in self.entries:
            self.entries.move_to_end(model)
            return
        if self.capacity is not None and nbytes > self.capacity:
            return
        self.entries[model] = nbytes
        self.changed = True
        while self.capacity is not None and sum(self.entries.values()) > self.capacity:
            victim = next((m for m in self.entries if not self.pins.get(m)), None)  # least recently used, unpinned
            if victim is None:
                break  # every entry is being read: the cache stays over its size until a read ends
            del self.entries[victim]

    def pin(self, model: str) -> None:
        """An instance start chose to read ``model`` from this cache: keep it until :meth:`unpin`
        (ServerlessLLM's and WarmServe's loaders read from pinned memory that stays put)."""
        self.pins[model] = self.pins.get(model, 0) + 1

    def unpin(self, model: str) -> None:
        n = self.pins.get(model, 0) - 1
        if n > 0:
            self.pins[model] = n
        else:
            self.pins.pop(model, None)

    def models(self, all_models) -> frozenset[str]:
        return frozenset(all_models) if self.everything else frozenset(self.entries)


class Node:
    """One server: its GPUs' ids and its shared links."""

    def __init__(self, idx: int, spec: ClusterSpec, gpu_ids: range):
        self.idx = idx
        self.gpu_ids = gpu_ids
        self.host_mem = Link(f"n{idx}.host_mem", spec.host_mem_bw)
        self.ssd = Link(f"n{idx}.ssd", spec.ssd_bw)
        self.nic = Link(f"n{idx}.nic", spec.nic_bw)  # into the node (downloads, RDMA receives)
        self.nic_tx = Link(f"n{idx}.nic_tx", spec.nic_bw)  # out of the node (RDMA sends to peers)
        self.host_cache = HostCache(spec.host_cache_bytes, everything=spec.host_cache_bytes is None)


class GPU:
    """One GPU: its memory pool, its PCIe link, the instances and replicas on it."""

    def __init__(self, idx: int, node: int, spec: ClusterSpec, on_mem_change=None):
        self.idx = idx
        self.node = node
        self.mem = GPUMemory(idx, spec.gpu_pool_bytes, on_mem_change)
        self.pcie = Link(f"g{idx}.pcie", spec.pcie_pinned_bw)
        self.nvlink_tx = Link(f"g{idx}.nvlink_tx", spec.nvlink_bw)  # NVLink is full duplex
        self.nvlink_rx = Link(f"g{idx}.nvlink_rx", spec.nvlink_bw)
        self.instances: set[int] = set()
        self.replicas: set[int] = set()
        self.background_flows = 0  # prewarm loads copying onto this GPU now
        self.failed = False  # the GPU failed (sim.faults): nothing runs or is placed on it again


class Cluster:
    """Nodes, GPUs and the flow network that moves weights between them."""

    def __init__(self, env, spec: ClusterSpec, on_mem_change=None):
        self.spec = spec
        self.net = FlowNetwork(env)
        self.nodes = [Node(n, spec, range(n * spec.gpus_per_node, (n + 1) * spec.gpus_per_node))
                      for n in range(spec.nodes)]
        self.gpus = [GPU(g, g // spec.gpus_per_node, spec, on_mem_change) for g in range(spec.n_gpus)]

    def path(self, source: str, gpu: int, peer_gpu: int | None = None) -> tuple[tuple[Link, ...], float]:
        """Links a load from ``source`` onto ``gpu`` crosses, and the flow's own rate ceiling.

        A peer source copies from ``peer_gpu``: over NVLink inside a node (its send side, then the
        destination's receive side), else GPUDirect RDMA (the peer node's NIC out, this node's NIC in,
        this GPU's PCIe link).
        """
        return SOURCES[source].path(self, gpu, peer_gpu)

    def node_links(self, node: int) -> set[Link]:
        n = self.nodes[node]
        return {n.host_mem, n.ssd, n.nic}  # the links a load onto this node waits on (not nic_tx)
