"""``vmm_pool``: WarmServe's pool of kept 2 MiB physical handles (warmserve.md section 6).

Nothing is freed or allocated on the critical path: a background thread maps handles ahead of the
copy, so only the part of the mapping longer than the copy shows, after it; KV is mapped lazily
and costs nothing up front; taking over a replica costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VMMPool:
    name: str = "vmm_pool"

    def sync_free_s(self, cost, freed_bytes: int) -> float:
        return 0.0

    def kv_alloc_s(self, cost, kv_bytes: int, engine_prewarm: bool) -> float:
        return 0.0

    def before_load_s(self, cost, shard_bytes: int, kv_bytes: int, sync_free_s: float, engine_prewarm: bool):
        return None

    def after_load_s(self, cost, shard_bytes: int, transfer_s: float):
        return self.prep_s(cost, shard_bytes, transfer_s)

    def on_adopt_s(self, cost, kv_bytes: int, sync_free_s: float, engine_prewarm: bool):
        return None

    def prep_s(self, cost, shard_bytes: int, transfer_s: float) -> float:
        return max(0.0, cost.vmm_map_s(shard_bytes) - transfer_s)


VMM_POOL = VMMPool()
