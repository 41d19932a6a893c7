"""``free_malloc``: memory is re-purposed the default way, ``cudaFree`` then ``cudaMalloc``.

Replicas evicted to make room are freed synchronously before the new instance starts; fresh
buffers for the weights are allocated before the copy (blocking); a pre-spawned engine (engine
prewarm) allocates its KV cache at activation (otherwise engine initialisation includes it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FreeMalloc:
    name: str = "free_malloc"

    def sync_free_s(self, cost, freed_bytes: int) -> float:
        return cost.free_s(freed_bytes) if freed_bytes else 0.0

    def kv_alloc_s(self, cost, kv_bytes: int, engine_prewarm: bool) -> float:
        return cost.alloc_s(kv_bytes) if engine_prewarm else 0.0

    def before_load_s(self, cost, shard_bytes: int, kv_bytes: int, sync_free_s: float, engine_prewarm: bool):
        return sync_free_s + cost.alloc_s(shard_bytes) + self.kv_alloc_s(cost, kv_bytes, engine_prewarm)

    def after_load_s(self, cost, shard_bytes: int, transfer_s: float):
        return None

    def on_adopt_s(self, cost, kv_bytes: int, sync_free_s: float, engine_prewarm: bool):
        return sync_free_s + self.kv_alloc_s(cost, kv_bytes, engine_prewarm)

    def prep_s(self, cost, shard_bytes: int, transfer_s: float) -> float:
        return cost.alloc_s(shard_bytes)


FREE_MALLOC = FreeMalloc()
