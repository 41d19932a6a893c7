"""``cumem``: vLLM's sleep-mode allocator (``vllm/device_allocator/cumem.py`` ``CuMemAllocator``; its C++
side ``csrc/cumem_allocator.cpp`` ``create_and_map``): every weight and KV allocation is backed through
the VMM API, one handle per allocation (``cuMemCreate`` + ``cuMemMap`` + ``cuMemSetAccess``), so that
the engine can release and re-create them at the same addresses when it sleeps and wakes.

Weights: one handle per tensor, created before the copy (``vmm_alloc_s`` with the profile's average
tensor size); the KV cache: created before the first step, priced as one large handle (vLLM allocates
one tensor per layer: tens of calls whose cost hardly depends on their size). Evicted replicas (none
in the systems that use it) are freed synchronously as with ``free_malloc``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CuMem:
    name: str = "cumem"

    def sync_free_s(self, cost, freed_bytes: int) -> float:
        return cost.free_s(freed_bytes) if freed_bytes else 0.0

    def kv_alloc_s(self, cost, kv_bytes: int, kv_prewarm: bool) -> float:
        return cost.vmm_alloc_s(kv_bytes, kv_bytes) if kv_bytes else 0.0

    def before_load_s(self, cost, shard_bytes: int, sync_free_s: float):
        return sync_free_s + cost.vmm_alloc_s(shard_bytes)

    def after_load_s(self, cost, shard_bytes: int, transfer_s: float):
        return None

    def on_adopt_s(self, cost, sync_free_s: float):
        return sync_free_s


CUMEM = CuMem()
