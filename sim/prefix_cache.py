"""The KV blocks an engine with prefix caching keeps: vLLM 0.6.3's automatic prefix caching (APC).

Reference: vLLM v0.6.3.post1, block manager v2 (the only one in 0.6.3):
``vllm/core/block/prefix_caching_block.py`` (``PrefixCachingBlockAllocator``), ``vllm/core/evictor_v2.py``
(``LRUEvictor``), ``vllm/core/block_manager.py`` (``SelfAttnBlockSpaceManager``); design notes in vLLM's
docs, ``automatic_prefix_caching/details.md`` (https://docs.vllm.ai/en/v0.6.3/automatic_prefix_caching/details.html).

A *full* block is known by a key that names its content and everything before it (a chained hash,
``PrefixCachingBlock.content_hash``); the engine computes keys from the workload's prompt-block ids
(:func:`block_key`). The cache counts references: a block held by running sequences has a positive
count and is shared by every sequence whose prompt has that key; when the count drops to 0 a block
whose KV was computed stays in the cache, still hittable, in an LRU *evictor*; it is evicted only
when a fresh block is needed and no empty one is left. Victims: the oldest last access, then the
deepest block (most tokens up to and including it), then the earliest freed (``LRUEvictor.evict``).

The engine (:mod:`warmsim.sim.engine_features`) owns the block counts; this class owns the keys:
which are held and how often, which are computed, and the evictor.
"""

from __future__ import annotations

import heapq
from collections import Counter

#: What :meth:`PrefixCache.acquire` found: a new key (the caller takes a fresh block), a block in use
#: and computed, a block in use not computed yet (its prefill is scheduled but has not run), or a
#: block taken back out of the evictor (computed).
NEW, SHARED, SHARED_PENDING, REVIVED = range(4)
#: A request's own keys (blocks no other request can share) are negative; block index in the low bits.
_OWN_SHIFT = 24


def block_key(ids: list[int] | None, trace_block: int, block_size: int, rid: int, prompt: int, j: int) -> int:
    """The key of block ``j`` (``block_size`` tokens) of request ``rid``, whose prompt has ``prompt``
    tokens and prompt-block ids ``ids`` of ``trace_block`` tokens each.

    A block wholly inside the prompt is named by the id of the trace block that holds its last
    token and its end's offset in that block: ``id x (trace_block + 1) + offset`` (ids are chained,
    so that pair names every token before it, whatever the two block sizes). Any other block
    (one holding generated tokens, or a prompt without ids) gets a key of its own,
    ``-1 - (rid << 24 | j)``: only the same request (recomputed after a preemption) can hit it."""
    end = (j + 1) * block_size
    if ids is not None and end <= prompt:
        t = (end - 1) // trace_block
        if t < len(ids):
            return ids[t] * (trace_block + 1) + end - trace_block * t
    return -1 - ((rid << _OWN_SHIFT) | j)


class PrefixCache:
    """Keys of one engine's full blocks: reference counts, computed flags and the LRU evictor.

    ``blocks[key] = [references, computed, evictor entry]``; a block with 0 references is in the
    evictor (entry > 0) and counted in :attr:`cached`."""

    __slots__ = ("blocks", "heap", "serial", "cached", "evicted")

    def __init__(self) -> None:
        self.blocks: dict[int, list] = {}
        self.heap: list[tuple] = []  # (last access, -depth, entry, key); stale entries skipped
        self.serial = 0
        self.cached = 0  # blocks in the evictor (no reference, still hittable)
        self.evicted = 0  # blocks evicted so far

    def acquire(self, key: int) -> int:
        """A sequence takes the block ``key``: :data:`NEW` (registered now, not computed: the
        caller takes a fresh block for it), :data:`SHARED`, :data:`SHARED_PENDING` or :data:`REVIVED`."""
        b = self.blocks.get(key)
        if b is None:
            self.blocks[key] = [1, False, 0]
            return NEW
        if b[0] == 0:
            b[0], b[2] = 1, 0
            self.cached -= 1
            return REVIVED
        b[0] += 1
        return SHARED if b[1] else SHARED_PENDING

    def adopt(self, key: int) -> bool:
        """A block that filled up during decode gets its key (computed, one reference); False if the
        key is already known (the block then stays anonymous)."""
        if key in self.blocks:
            return False
        self.blocks[key] = [1, True, 0]
        return True

    def mark_computed(self, key: int) -> None:
        """The step that fills ``key``'s block was scheduled (``mark_blocks_as_computed``)."""
        b = self.blocks.get(key)
        if b is not None:
            b[1] = True

    def release(self, key: int, now: float, depth: int) -> bool:
        """A sequence lets go of ``key`` at ``now`` (its last access); ``depth``: tokens up to and
        including the block. True if no sequence holds it any more: it enters the evictor, or, if
        its KV was never computed (a sequence preempted before that chunk ran), it is forgotten."""
        b = self.blocks[key]
        b[0] -= 1
        if b[0] > 0:
            return False
        if not b[1]:
            del self.blocks[key]
            return True
        self.serial += 1
        b[2] = self.serial
        heapq.heappush(self.heap, (now, -depth, self.serial, key))
        self.cached += 1
        if len(self.heap) > 4 * self.cached + 1024:
            self._compact()
        return True

    def evict(self, n: int) -> None:
        """Evict ``n`` blocks (at most :attr:`cached`), oldest access first, then deepest, then
        earliest freed."""
        heap, blocks = self.heap, self.blocks
        while n > 0:
            _, _, entry, key = heapq.heappop(heap)
            b = blocks.get(key)
            if b is None or b[0] or b[2] != entry:
                continue  # revived since (or evicted): a stale entry
            del blocks[key]
            self.cached -= 1
            self.evicted += 1
            n -= 1

    def clear(self) -> None:
        """Forget everything (the instance and its GPU memory are gone)."""
        self.blocks.clear()
        self.heap.clear()
        self.cached = 0

    def _compact(self) -> None:
        blocks = self.blocks
        self.heap = [e for e in self.heap if (b := blocks.get(e[3])) is not None and not b[0] and b[2] == e[2]]
        heapq.heapify(self.heap)

    def evictor_order(self) -> list[int]:
        """The cached keys in the order they would be evicted (for tests and the invariant checker)."""
        blocks = self.blocks
        live = [e for e in self.heap if (b := blocks.get(e[3])) is not None and not b[0] and b[2] == e[2]]
        return [e[3] for e in sorted(live)]


def audit(engine) -> str | None:
    """What is wrong with a prefix-caching engine's block accounts, recounted from its sequences
    (None if nothing): the invariant checker's KV conservation for such engines."""
    cache = engine.cache
    held: Counter = Counter()
    anonymous = 0
    for s in engine.running:
        if len(s.keys) > s.blocks:
            return f"request {s.rid} has {len(s.keys)} keyed blocks but holds {s.blocks} blocks"
        held.update(s.keys)
        anonymous += s.blocks - len(s.keys)
    for s in engine.waiting:
        if s.blocks or s.keys:
            return f"waiting request {s.rid} holds {s.blocks} blocks"
    in_use = cached = 0
    for key, (refs, computed, entry) in cache.blocks.items():
        if refs != held.get(key, 0):
            return f"block {key} has {refs} references but {held.get(key, 0)} running sequences hold it"
        if refs:
            in_use += 1
        elif not computed or not entry:
            return f"block {key} has no reference but is not a computed block in the evictor"
        else:
            cached += 1
    missing = [k for k in held if k not in cache.blocks]
    if missing:
        return f"running sequences hold block {missing[0]}, which the cache does not know"
    if cached != cache.cached or len(cache.evictor_order()) != cached:
        return f"evictor holds {len(cache.evictor_order())} blocks, counted {cache.cached}, recounted {cached}"
    if engine.used_blocks != anonymous + in_use:
        return (f"engine uses {engine.used_blocks} KV blocks but its running sequences hold {anonymous} "
                f"unshared and {in_use} keyed blocks")
    if engine.used_blocks + cache.cached + engine.reserved > engine.total_blocks:
        return (f"KV blocks over-committed: used {engine.used_blocks} + cached {cache.cached} + lent "
                f"{engine.reserved} > {engine.total_blocks}")
    return None
