"""KV memory that grows and shrinks per engine on a shared GPU (kvcached's memory ballooning, Prism).

kvcached (``ovg-project/kvcached``; Prism, arXiv 2505.04021) gives each engine a large *virtual* KV
range and maps 2 MiB physical pages into it only as blocks are allocated (``cuMemCreate`` +
``cuMemMap`` + ``cuMemSetAccess``), unmapping them when blocks are freed; engines sharing a GPU draw
on one physical pool, and an engine that finds the pool empty is told so and waits or preempts
(``KVCachePoolExhausted``). A few pages are kept mapped ahead of need by a background thread
(``KVCACHED_MIN/MAX_RESERVED_PAGES``, ``csrc/page_allocator.cpp``).

On every instance of a system with this mechanism:

- **The virtual range** is the GPU pool's capacity less the instance's weights; only the reserve (at
  least one block, at most what the plan sized) is mapped at the start. The engine counts the
  unmapped rest as blocks lent to the pool (``Engine.reserved``), so the KV-lending accounting and
  its invariants hold unchanged.
- **Growth on demand.** When the engine needs blocks it has not mapped it asks the run
  (``reclaim_kv``): the balloon maps what the GPUs' free memory allows (all GPUs of a TP group alike)
  — for a new sequence exactly its blocks, for a decode run the blocks its sequences need until the
  first of them finishes. If the pool has too little, the engine preempts or waits (with nothing
  running, until a pass of the loop below finds it waiting and it tries again).
- **The cost.** Mapping the blocks of a new sequence's prompt is on its path: the admitting prefill step
  takes ``vmm_alloc_s(bytes, page)`` longer (a grant too short to admit it costs nothing on the path: the
  engine waits for memory anyway) (the cost profile's VMM create + map + set-access per
  page). Growth during decode (a block per sequence every ``block_size`` tokens) is taken as absorbed
  by the reserve the background thread keeps mapped: not charged.
- **Shrinking and the reserve.** Every ``period_s`` each changed engine's free mapped blocks are set
  to the reserve (``reserve_mib`` rounded up to whole blocks): pages beyond it go back to the pool
  (unmapping costs nothing on the path: it happens on free), a short reserve is refilled in the
  background when the pool has room.

Not modelled: per-layer page layouts, the prefix cache inside the pool, several processes mapping in
parallel (each GPU's pages are mapped by its own process, so a TP group's take the time of one GPU's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from warmsim.sim.errors import UserError
from warmsim.sim.mechanisms.base import Mechanism
from warmsim.sim.types import ACTIVE

MIB = 1 << 20


@dataclass(frozen=True)
class BalloonKnobs:
    """Knobs of the ``kv_balloon`` mechanism (``mechanisms.kv_balloon`` of a system config)."""

    #: Free KV kept mapped ahead of need, MiB: kvcached's ``KVCACHED_MAX_RESERVED_PAGES`` (10) x 2 MiB.
    reserve_mib: float = 20.0
    #: Page size of the mapping, MiB (``KVCACHED_PAGE_SIZE_MB``, default 2).
    page_mib: float = 2.0
    #: Seconds between the shrink/refill passes [ours: kvcached unmaps on free; 0.1 s is its queue-update
    #: interval in Prism, ``scheduling/constants.py`` ``UPDATE_QUEUE_INTERVAL``].
    period_s: float = 0.1

    def __post_init__(self) -> None:
        if not self.reserve_mib >= 0:
            raise UserError(f"reserve_mib must be >= 0, got {self.reserve_mib!r}")
        if not self.page_mib > 0 or self.page_mib % 2:
            raise UserError(f"page_mib must be a positive multiple of 2, got {self.page_mib!r}")
        if not self.period_s > 0:
            raise UserError(f"period_s must be > 0, got {self.period_s!r}")


class Balloon(Mechanism):
    """The ``kv_balloon`` mechanism of one run."""

    name = "kv_balloon"
    Knobs = BalloonKnobs

    def __init__(self, sim, knobs: BalloonKnobs) -> None:
        super().__init__(sim, knobs)
        self.page = int(knobs.page_mib * MIB)
        self.stall: dict[int, float] = {}  # instance id -> mapping seconds its next prefill waits
        self.grown = self.shrunk = 0  # blocks mapped on demand / unmapped
        self.exhausted = 0  # asks the pool could not fully meet
        self.map_s = 0.0  # seconds of mapping charged to prefills
        self.peak = 0  # most KV bytes one GPU's balloons held together
        self.starved: set[int] = set()  # engines the pool could not serve: looked at again after each pass
        self._slowdown = sim.step_slowdown
        sim.step_slowdown = self.step_slowdown
        sim.reclaim_kv = self.grow

    def reserve_blocks(self, inst) -> int:
        return math.ceil(self.knobs.reserve_mib * MIB / inst.block_bytes) if self.knobs.reserve_mib else 0

    # ---- hooks ------------------------------------------------------------------------------------
    def on_created(self, inst) -> None:
        """Give the engine its virtual range and map only the reserve (at least one block); every
        other block counts as lent to the pool."""
        e = inst.engine
        capacity = min(self.sim.cluster.gpus[g].mem.capacity_bytes for g in inst.gpus)
        virtual = max(e.total_blocks, (capacity - inst.model.shard_bytes) // inst.block_bytes)
        mapped = min(e.total_blocks, max(1, self.reserve_blocks(inst)))
        e.total_blocks = virtual
        e.reserved = virtual - mapped
        e.elastic = True
        inst.kv_bytes_per_gpu = mapped * inst.block_bytes

    def start(self) -> None:
        self.sim.env.process(self._loop())

    # ---- growth -----------------------------------------------------------------------------------
    def grow(self, inst, blocks: int) -> None:
        """The engine of ``inst`` asks for ``blocks`` more (``Engine`` calls it as ``reclaim_kv``)."""
        e = inst.engine
        decode = blocks >= e.reserved  # a decode run that ran out asks for everything lent
        want = min(blocks, e.reserved)
        if decode:
            want = min(want, max(1, self._run_need(e)))
        room = min(self.sim.cluster.gpus[g].mem.free_bytes for g in inst.gpus) // inst.block_bytes
        got = min(want, room)
        if got < want:
            self.exhausted += 1
            self.starved.add(inst.id)
        if got <= 0:
            return
        self._map(inst, e.reserved - got)
        self.grown += got
        if not decode and got == want:  # (a short grant fails the admission: its mapping overlaps the wait)
            t = self.sim.cost.vmm_alloc_s(got * inst.block_bytes, self.page)
            self.stall[inst.id] = self.stall.get(inst.id, 0.0) + t
            self.map_s += t

    @staticmethod
    def _run_need(e) -> int:
        """Blocks the running sequences need beyond the free ones to reach the first one's end."""
        if not e.running:
            return 0
        k = min(s.out - s.gen for s in e.running)
        bs = e.spec.block_size
        need = sum(-(-(s.ctx + k) // bs) - s.blocks for s in e.running)
        return max(0, need - e.free_blocks)

    @staticmethod
    def _run_pending(e) -> int:
        """Blocks the decode run in progress (``e._k`` steps; none during a prefill) will add when it ends."""
        if not e.busy or e._admitted is not None:
            return 0
        bs = e.spec.block_size
        return sum(-(-(s.ctx + e._k) // bs) - s.blocks for s in e.running)

    def _map(self, inst, reserved: int) -> None:
        self.sim.kv.set_reserved(inst, reserved)
        for g in inst.gpus:
            self.peak = max(self.peak, self.sim.cluster.gpus[g].mem.kind_bytes("kv"))

    def step_slowdown(self, inst, phase: str, batch: int, tokens: int | None = None) -> float:
        """The run's step slowdown, plus the mapping a new sequence waited for, added to the prefill
        step that admits it (as a factor of that step's time)."""
        f = self._slowdown(inst, phase, batch, tokens)
        if phase == "prefill" and self.stall:
            t = self.stall.pop(inst.id, 0.0)
            if t:
                f += t / self.sim.cost.prefill_s(inst.model, tokens, batch)
        return f

    # ---- shrinking --------------------------------------------------------------------------------
    def _loop(self):
        sim = self.sim
        dirty = sim.kv.dirty  # engines add themselves at every pass of their loop
        while True:
            yield sim.env.timeout(self.knobs.period_s)
            todo = sorted(dirty)
            dirty.clear()
            for iid in todo:
                inst = sim.instances.get(iid)
                if inst is None or inst.state != ACTIVE:
                    continue
                e = inst.engine
                # Blocks a decode run in progress will still take must stay mapped.
                target = min(self.reserve_blocks(inst) + self._run_pending(e), e.free_blocks + e.reserved)
                free = e.free_blocks
                if free > target:
                    self.shrunk += free - target
                    self._map(inst, e.reserved + free - target)
                elif free < target:
                    room = min(sim.cluster.gpus[g].mem.free_bytes for g in inst.gpus) // inst.block_bytes
                    add = min(target - free, room, e.reserved)
                    if add > 0:
                        self._map(inst, e.reserved - add)
            # Engines the pool turned down try again (one waiting with nothing running is idle until then).
            starved, self.starved = sorted(self.starved), set()
            for iid in starved:
                inst = sim.instances.get(iid)
                if inst is not None and inst.state == ACTIVE and inst.engine.waiting:
                    inst.engine._poke()

    # ---- report -----------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        gib = self.peak / (1 << 30)
        return [f"KV balloon (sim/mechanisms/balloon.py): {self.grown} blocks mapped on demand "
                f"({self.map_s:.2f} s of mapping on prefills), {self.shrunk} unmapped, {self.exhausted} asks the "
                f"GPU pool could not fully meet; at most {gib:.1f} GiB of KV on one GPU"]
