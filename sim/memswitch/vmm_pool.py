"""``vmm_pool``: WarmServe's pool of kept 2 MiB physical handles (warmserve.md section 6).

Nothing is freed or allocated on the critical path: a background thread maps handles ahead of the
copy, so only the part of the mapping longer than the copy shows, after it; taking over a replica
costs nothing. The KV range is mapped in the background too: with KV prewarm the first step waits
only for the blocks it needs (taken as nothing), without it for the whole range (the artifact's
``CTRL/utils.py`` ``MyWorkerWrapper.execute_model_spmd`` polls every 50 ms until every KV chunk is
mapped when ``enable_kv_prewarm`` is off). That wait is charged whole: the mapping starts during
engine construction, and the little of it the API server's start would hide is not subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VMMPool:
    name: str = "vmm_pool"

    def sync_free_s(self, cost, freed_bytes: int) -> float:
        return 0.0

    def kv_alloc_s(self, cost, kv_bytes: int, kv_prewarm: bool) -> float:
        return 0.0 if kv_prewarm or not kv_bytes else cost.vmm_map_s(kv_bytes)

    def before_load_s(self, cost, shard_bytes: int, sync_free_s: float):
        return None

    def after_load_s(self, cost, shard_bytes: int, transfer_s: float):
        return max(0.0, cost.vmm_map_s(shard_bytes) - transfer_s)

    def on_adopt_s(self, cost, sync_free_s: float):
        return None


VMM_POOL = VMMPool()
