"""Weights copied from the GPUs of a running instance of the same model (BlitzScale-style).

Inside a node over NVLink (the peer GPU's send side, then the destination's receive side; a link
pair per GPU pair, nothing shared); across nodes by GPUDirect RDMA (the peer node's NIC out, this
node's NIC in, this GPU's PCIe link).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeerSource:
    name: str
    same_node: bool
    link_kinds: tuple[str | None, str]
    storage: bool = False
    peer: bool = True
    reads_host_cache: bool = False

    def ceiling(self, bandwidth) -> float:
        return float("inf")

    def path(self, cluster, gpu: int, peer_gpu: int | None = None):
        if peer_gpu is None:
            raise KeyError(f"{self.name} needs the peer GPU")
        g = cluster.gpus[gpu]
        p = cluster.gpus[peer_gpu]
        if (p.node == g.node) != self.same_node:
            raise KeyError(f"{self.name} from GPU {peer_gpu} to GPU {gpu}: wrong path for their nodes")
        if self.same_node:
            return (p.nvlink_tx, g.nvlink_rx), self.ceiling(cluster.spec.link_bandwidth())
        return (cluster.nodes[p.node].nic_tx, cluster.nodes[g.node].nic, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


PEER_NVLINK = PeerSource("peer_nvlink", same_node=True, link_kinds=(None, "nvlink"))
PEER_RDMA = PeerSource("peer_rdma", same_node=False, link_kinds=("nic", "pcie_h2d_pinned"))
