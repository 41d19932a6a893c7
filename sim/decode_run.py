"""The closed-form arithmetic of a run of decode steps (:class:`warmsim.sim.engine.Engine`): between
changes of batch membership the steps are regular, step ``n`` ending at ``n per + quad n (n - 1) / 2``
(each step attends to ``batch`` more tokens). How many steps an elapsed time covers, and how many
more steps the free KV blocks allow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

#: Batch size from which the KV look-ahead uses numpy arrays instead of Python integers.
NUMPY_FROM = 64


class HeldSeq(Protocol):
    """What the look-ahead reads of a running sequence."""

    ctx: int  # tokens whose KV it holds or will hold after its next prefill
    blocks: int  # KV blocks it holds


def steps_done(elapsed: float, per: float, quad: float, k: int) -> int:
    """Whole steps of a run of at most ``k`` finished ``elapsed`` seconds into it
    (t(n) = n per + quad n(n-1)/2)."""
    if quad > 0:
        a, b = quad / 2, per - quad / 2
        n = int((-b + math.sqrt(b * b + 4 * a * elapsed)) / (2 * a))
    else:
        n = int(elapsed / per) if per > 0 else k
    n = max(0, min(n, k))
    while n > 0 and n * per + quad * n * (n - 1) / 2 > elapsed:
        n -= 1
    while n < k and (n + 1) * per + quad * (n + 1) * n / 2 <= elapsed:
        n += 1
    return n


def steps_before_kv_full(running: Sequence[HeldSeq], block_size: int, free: int, k_max: int) -> int:
    """The largest n <= k_max such that n more decode steps of ``running`` fit in ``free`` KV blocks
    of ``block_size`` tokens."""
    bs = block_size
    if len(running) <= NUMPY_FROM:
        # Exact integer arithmetic either way; plain Python is faster for small batches.
        ctxs = [s.ctx for s in running]
        held_sum = sum(s.blocks for s in running)

        def need(n: int) -> int:
            return sum([-(-(c + n) // bs) for c in ctxs]) - held_sum
    else:
        ctx = np.fromiter((s.ctx for s in running), dtype=np.int64, count=len(running))
        held = np.fromiter((s.blocks for s in running), dtype=np.int64, count=len(running))

        def need(n: int) -> int:
            return int((-(-(ctx + n) // bs) - held).sum())

    if need(k_max) <= free:
        return k_max
    lo, hi = 0, k_max  # need(lo) <= free < need(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if need(mid) <= free:
            lo = mid
        else:
            hi = mid
    return lo
