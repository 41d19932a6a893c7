"""Proactive KV-cache reservation (warmserve.md section 5).

A running engine rarely uses all its KV blocks, least of all while its load falls. Every
``period_s`` WarmServe gives each engine a target number of free blocks,
``floor(total_blocks * running / per_instance)``; blocks freed beyond that target are *reserved*:
taken out of the engine's free list and their memory handed back to the GPU's pool, where the
placement may prewarm other models.

The artifact reserves only at the moment a block is freed and never hands reserved blocks back.
Here the simulator calls :meth:`KVReservePolicy.step` once per engine per ``period_s``; passing
``freed_blocks`` (blocks freed since the previous call) reproduces "reserve only as blocks are
freed". Handing blocks back when ``running`` rises is optional (``give_back``); the simulator must
then find that memory in the GPU pool again, evicting prewarmed weights if the pool is short.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmsim.sim.knobs import bounded, count, flag, period


@dataclass(frozen=True)
class KVReserveStep:
    """What to do with one engine now: ``reserve`` more free blocks (move them out of the engine
    and return their memory to the pool), or ``give_back`` reserved blocks to the engine's free
    list (take their memory from the pool). At most one of the two is non-zero."""

    reserve: int = 0
    give_back: int = 0


@dataclass(frozen=True)
@bounded(period_s=period("reservation period in seconds"),
         per_instance=count("requests per instance in the target of free blocks"),
         give_back=flag("engines take lent blocks back as their load rises"))
class KVReservePolicy:
    """Per-engine KV reservation rule.

    Args:
        period_s: how often the simulator calls :meth:`step` for each engine (0.5 s).
        per_instance: requests one instance serves at once, ``B`` in the target (32).
        give_back: when the target rises above the engine's free blocks (its running requests went
            up), return up to that shortfall from its reserved blocks. ``False`` is the artifact
            (reservation is one-way until the engine stops).
    """

    period_s: float = 0.5
    per_instance: int = 32
    give_back: bool = True

    def target_free(self, total_blocks: int, running: int) -> int:
        """Free blocks the engine keeps: ``floor(total_blocks * running / per_instance)``, at most
        ``total_blocks``."""
        return min(total_blocks * max(running, 0) // self.per_instance, total_blocks)

    def step(self, total_blocks: int, running: int, free_blocks: int, reserved_blocks: int,
             freed_blocks: int | None = None) -> KVReserveStep:
        """Decide for one engine.

        Args:
            total_blocks: KV blocks the engine was created with.
            running: requests in the engine now (running and queued).
            free_blocks: blocks in the engine's free list now (not in use, not reserved).
            reserved_blocks: blocks already reserved (lent to the pool).
            freed_blocks: blocks freed since the previous call; ``None`` means "any free block
                may be reserved". Only these may be newly reserved.

        Reserve ``min(free - target, freed)`` when positive: only free blocks, never blocks in use.
        Otherwise, with ``give_back``, return ``min(target - free, reserved)`` when positive.
        """
        if min(total_blocks, free_blocks, reserved_blocks) < 0 or free_blocks + reserved_blocks > total_blocks:
            raise ValueError(f"inconsistent block counts: total={total_blocks} free={free_blocks} "
                             f"reserved={reserved_blocks}")
        target = self.target_free(total_blocks, running)
        excess = free_blocks - target
        if excess > 0:
            if freed_blocks is not None:
                excess = min(excess, max(freed_blocks, 0))
            return KVReserveStep(reserve=excess)
        if self.give_back and excess < 0 and reserved_blocks > 0:
            return KVReserveStep(give_back=min(-excess, reserved_blocks))
        return KVReserveStep()
