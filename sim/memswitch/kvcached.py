"""``kvcached``: weights allocated the default way (``cudaMalloc`` before the copy, as ``free_malloc``),
the KV cache as a large virtual range whose 2 MiB pages are mapped on demand (ovg-project/kvcached:
``kvcached/utils.py`` page size, ``csrc/page_allocator.cpp``). A start maps only the pages it holds
at first (the balloon's reserve, ``sim/mechanisms/balloon.py``); the balloon charges the pages mapped
later. Evicted replicas (none in the systems that use it) are freed synchronously.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmsim.sim.models import CHUNK_BYTES


@dataclass(frozen=True)
class KvCached:
    name: str = "kvcached"

    def sync_free_s(self, cost, freed_bytes: int) -> float:
        return cost.free_s(freed_bytes) if freed_bytes else 0.0

    def kv_alloc_s(self, cost, kv_bytes: int, kv_prewarm: bool) -> float:
        return cost.vmm_alloc_s(kv_bytes, CHUNK_BYTES) if kv_bytes else 0.0

    def before_load_s(self, cost, shard_bytes: int, sync_free_s: float):
        return sync_free_s + cost.alloc_s(shard_bytes)

    def after_load_s(self, cost, shard_bytes: int, transfer_s: float):
        return None

    def on_adopt_s(self, cost, sync_free_s: float):
        return sync_free_s


KVCACHED = KvCached()
