"""``free_malloc``: memory is re-purposed the default way, ``cudaFree`` then ``cudaMalloc``.

Replicas evicted to make room are freed synchronously before the new instance starts; fresh
buffers for the weights are allocated before the copy (blocking); the engine allocates its KV
cache with cudaMalloc during its start (vLLM's ``CacheEngine``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FreeMalloc:
    name: str = "free_malloc"

    def sync_free_s(self, cost, freed_bytes: int) -> float:
        return cost.free_s(freed_bytes) if freed_bytes else 0.0

    def kv_alloc_s(self, cost, kv_bytes: int, kv_prewarm: bool) -> float:
        return cost.alloc_s(kv_bytes) if kv_bytes else 0.0

    def before_load_s(self, cost, shard_bytes: int, sync_free_s: float):
        return sync_free_s + cost.alloc_s(shard_bytes)

    def after_load_s(self, cost, shard_bytes: int, transfer_s: float):
        return None

    def on_adopt_s(self, cost, sync_free_s: float):
        return sync_free_s


FREE_MALLOC = FreeMalloc()
