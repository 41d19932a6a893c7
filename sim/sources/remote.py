"""Weights from remote storage: the node's NIC (receive side), then the GPU's PCIe link."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteSource:
    name: str = "remote"
    storage: bool = True
    peer: bool = False
    same_node: bool | None = None
    reads_host_cache: bool = False
    link_kinds: tuple[str, str] = ("nic", "pcie_h2d_pinned")

    def ceiling(self, bandwidth) -> float:
        return float("inf")

    def path(self, cluster, gpu: int, peer_gpu: int | None = None):
        g = cluster.gpus[gpu]
        return (cluster.nodes[g.node].nic, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


REMOTE = RemoteSource()
