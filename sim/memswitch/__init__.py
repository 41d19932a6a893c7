"""Memory-switch mechanisms: how a GPU's memory is made ready for a new instance's weights and KV.

One :class:`MemorySwitch` per name a system may set (``mechanisms.memswitch``), in one table,
:data:`MEMSWITCHES`. The instance lifecycle asks its mechanism for the waits around a load; a
method returning ``None`` means "no wait at all" (no event is scheduled), which is not the same as
a wait of 0 s (an event at the same instant). A new mechanism is one new module here plus one
entry in :data:`MEMSWITCHES` (``docs/extending.md``).
"""

from __future__ import annotations

from typing import Protocol

from warmsim.sim.cost import CostModel
from warmsim.sim.memswitch.cumem import CUMEM
from warmsim.sim.memswitch.free_malloc import FREE_MALLOC
from warmsim.sim.memswitch.kvcached import KVCACHED
from warmsim.sim.memswitch.vmm_pool import VMM_POOL


class MemorySwitch(Protocol):
    """The memory-preparation costs of one mechanism."""

    @property
    def name(self) -> str:
        """The name a system sets (``mechanisms.memswitch``; read-only: the switches are frozen dataclasses)."""
        ...

    def sync_free_s(self, cost: CostModel, freed_bytes: int) -> float:
        """Blocking free of the replicas an activation evicted (``freed_bytes`` per GPU)."""
        ...

    def kv_alloc_s(self, cost: CostModel, kv_bytes: int, kv_prewarm: bool) -> float:
        """KV-cache allocation (or mapping) a new engine waits for before its first step
        (``kv_prewarm``: the system maps KV blocks as they are needed)."""
        ...

    def before_load_s(self, cost: CostModel, shard_bytes: int, sync_free_s: float) -> float | None:
        """Wait before a cold load's copy starts (None: none)."""
        ...

    def after_load_s(self, cost: CostModel, shard_bytes: int, transfer_s: float) -> float | None:
        """Wait after the copy and its fixed overhead (None: none)."""
        ...

    def on_adopt_s(self, cost: CostModel, sync_free_s: float) -> float | None:
        """Wait when an instance takes over a prewarmed replica (None: none)."""
        ...


#: Every memory-switch mechanism by name.
MEMSWITCHES: dict[str, MemorySwitch] = {m.name: m for m in (FREE_MALLOC, VMM_POOL, CUMEM, KVCACHED)}

