"""Per-GPU memory accounting at 2 MiB granularity, with a hard no-over-commit invariant."""

from __future__ import annotations

from warmsim.sim.errors import PlanError
from warmsim.sim.models import CHUNK_BYTES, align_up

#: Kinds of holdings on a GPU.
WEIGHTS, KV, PREWARM = "weights", "kv", "prewarm"


class GPUMemory:
    """The memory pool of one GPU: ``capacity`` chunks handed out to owners by kind.

    Owners are opaque keys (an instance or replica id with a kind). Every change goes through
    :meth:`set`, which refuses to exceed capacity, so the invariant holds at every instant.
    """

    __slots__ = ("gpu", "capacity", "used", "held", "by_kind", "on_change")

    def __init__(self, gpu: int, capacity_bytes: int, on_change=None):
        self.gpu = gpu
        self.capacity = capacity_bytes // CHUNK_BYTES
        self.used = 0
        self.held: dict[tuple, int] = {}  # (kind, owner) -> chunks
        self.by_kind: dict[str, int] = {}  # kind -> chunks held (kept with ``held``; O(1) kind_bytes)
        self.on_change = on_change

    @property
    def capacity_bytes(self) -> int:
        return self.capacity * CHUNK_BYTES

    @property
    def used_bytes(self) -> int:
        return self.used * CHUNK_BYTES

    @property
    def free_bytes(self) -> int:
        return (self.capacity - self.used) * CHUNK_BYTES

    def bytes_of(self, kind: str, owner) -> int:
        return self.held.get((kind, owner), 0) * CHUNK_BYTES

    def kind_bytes(self, kind: str) -> int:
        return self.by_kind.get(kind, 0) * CHUNK_BYTES

    def fits(self, nbytes: int, kind: str = WEIGHTS, owner=None) -> bool:
        """Whether holding ``nbytes`` for (kind, owner) would fit, counting what it already holds."""
        new = align_up(nbytes) // CHUNK_BYTES
        return self.used - self.held.get((kind, owner), 0) + new <= self.capacity

    def set(self, kind: str, owner, nbytes: int) -> None:
        """Make (kind, owner) hold exactly ``nbytes`` (rounded up to chunks); 0 releases it."""
        key = (kind, owner)
        new = align_up(nbytes) // CHUNK_BYTES
        old = self.held.get(key, 0)
        if self.used - old + new > self.capacity:
            raise PlanError(f"GPU {self.gpu}: {kind} for {owner} needs {new} chunks, "
                            f"only {self.capacity - self.used + old} free of {self.capacity}")
        self.used += new - old
        if new != old:
            self.by_kind[kind] = self.by_kind.get(kind, 0) + new - old
        if new:
            self.held[key] = new
        else:
            self.held.pop(key, None)
        if self.on_change is not None and new != old:
            self.on_change(self)

    def release(self, kind: str, owner) -> None:
        self.set(kind, owner, 0)
