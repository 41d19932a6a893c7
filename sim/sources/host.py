"""Weights from the node's host memory: pinned (the checkpoint cache) or pageable buffers.

Both cross the node's host-memory link and the GPU's PCIe link; a pageable copy is also capped per
flow at the pageable PCIe bandwidth. Both need the checkpoint in the node's host cache.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostMemorySource:
    name: str
    gpu_link: str  # link kind of the PCIe hop (for the start-up estimate)
    pageable: bool
    storage: bool = True
    peer: bool = False
    same_node: bool | None = None
    reads_host_cache: bool = True

    @property
    def link_kinds(self) -> tuple[str, str]:
        return ("host_mem", self.gpu_link)

    def ceiling(self, bandwidth) -> float:
        return bandwidth["pcie_h2d_pageable"] if self.pageable else float("inf")

    def path(self, cluster, gpu: int, peer_gpu: int | None = None):
        g = cluster.gpus[gpu]
        node = cluster.nodes[g.node]
        return (node.host_mem, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


HOST_PINNED = HostMemorySource("host_pinned", "pcie_h2d_pinned", pageable=False)
HOST_PAGEABLE = HostMemorySource("host_pageable", "pcie_h2d_pageable", pageable=True)
