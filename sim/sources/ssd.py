"""Weights from the node's local SSD: its read link, then the GPU's PCIe link."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSDSource:
    name: str = "ssd"
    storage: bool = True
    peer: bool = False
    same_node: bool | None = None
    reads_host_cache: bool = False
    link_kinds: tuple[str, str] = ("ssd_read", "pcie_h2d_pinned")

    def ceiling(self, bandwidth) -> float:
        return float("inf")

    def path(self, cluster, gpu: int, peer_gpu: int | None = None):
        g = cluster.gpus[gpu]
        return (cluster.nodes[g.node].ssd, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


SSD = SSDSource()
