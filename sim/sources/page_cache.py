"""Weights read from a checkpoint file in the page cache, then copied from pageable memory: the
loader of WarmServe's artifact (``CTRL/utils.py`` ``get_weights`` reads the rank's whole
``model-rank-{r}-part-0.safetensors`` into pageable CPU tensors; ``PrewarmModel.load_model`` then
copies them tensor by tensor; vLLM's ``ShardedStateLoader`` in the artifact's default mode reads and
copies the same file tensor by tensor).

The read and the copy follow one another, so one flow moves at most
``1 / (1 / page_cache_read + 1 / pcie_h2d_pageable)``; it crosses the node's host-memory link and
the GPU's PCIe link. The checkpoint files are taken as already in the page cache (a server's host
memory holds every model's files; the artifact's launch reads them once during its prewarm lead);
the pinned checkpoint cache is not used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageCacheSource:
    name: str = "page_cache"
    storage: bool = True
    peer: bool = False
    same_node: bool | None = None
    reads_host_cache: bool = False
    link_kinds: tuple[str, str] = ("host_mem", "pcie_h2d_pageable")

    def ceiling(self, bandwidth) -> float:
        return 1.0 / (1.0 / bandwidth["page_cache_read"] + 1.0 / bandwidth["pcie_h2d_pageable"])

    def path(self, cluster, gpu: int, peer_gpu: int | None = None):
        g = cluster.gpus[gpu]
        return (cluster.nodes[g.node].host_mem, g.pcie), self.ceiling(cluster.spec.link_bandwidth())


PAGE_CACHE = PageCacheSource()
