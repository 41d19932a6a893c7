"""Weights coming back from a sleeping engine's own pinned host-memory backup (vLLM sleep mode, level 1:
``CuMemAllocator.sleep`` copies every ``weights`` allocation to a pinned CPU tensor, ``wake_up`` copies
it back). The node's host-memory link, then the GPU's PCIe link; no per-flow ceiling beyond them.

Not a storage tier: only a wake of a level-1 sleeper (``Activate.wake``, ``sim/mechanisms/sleep.py``)
loads from here, and the backup is the engine's, not the node's checkpoint cache.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SleepBackupSource:
    name: str = "sleep_backup"
    storage: bool = False
    peer: bool = False
    same_node: bool | None = None
    reads_host_cache: bool = False
    link_kinds: tuple[str, str] = ("host_mem", "pcie_h2d_pinned")

    def ceiling(self, bandwidth) -> float:
        return float("inf")

    def path(self, cluster, gpu: int, peer_gpu: int | None = None):
        g = cluster.gpus[gpu]
        return (cluster.nodes[g.node].host_mem, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


SLEEP_BACKUP = SleepBackupSource()
