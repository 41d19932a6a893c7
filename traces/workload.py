"""The canonical workload the simulator replays.

A :class:`Workload` is a column table of requests sorted by arrival, one row per request, plus the
names of the models that the ``model`` column indexes, optional per-model history that seasonal
predictors read (the same window on previous days), and optional prefix-block ids (which requests
share which prompt prefix: the Mooncake traces' ``hash_ids``, or a multi-turn recipe's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PrefixBlocks:
    """Per request, the ids of its prompt's blocks of ``block_tokens`` tokens, stored flat.

    Request i's ids are ``ids[offsets[i]:offsets[i + 1]]``; id k covers prompt tokens
    ``[k * block_tokens, (k + 1) * block_tokens)`` (the last one may be partial). Ids are *chained*:
    two requests with the same id at position k have identical prompts from token 0 through the end
    of block k (the Mooncake FAST'25 traces' ``hash_ids`` are built that way, 512 tokens a block).
    One int64 array and one offsets array: a 5 M-request day with ~25 ids per request is ~1 GB less
    than as Python lists.

    Attributes:
        ids: int64 ids, non-negative, all requests' ids one after the other.
        offsets: int64 array of ``len(workload) + 1`` non-decreasing positions into ``ids``.
        block_tokens: prompt tokens one id stands for.
    """

    ids: np.ndarray
    offsets: np.ndarray
    block_tokens: int

    def of(self, rid: int) -> np.ndarray:
        """Request ``rid``'s ids."""
        return self.ids[self.offsets[rid]:self.offsets[rid + 1]]

    def take(self, idx: np.ndarray) -> PrefixBlocks:
        """The ids of requests ``idx`` (in that order; repeats allowed)."""
        idx = np.asarray(idx, dtype=np.int64)
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        lens = ends - starts
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        # Positions of every kept id: each request's start, then +1 within its run.
        pos = np.repeat(starts - offsets[:-1], lens) + np.arange(offsets[-1], dtype=np.int64)
        return PrefixBlocks(self.ids[pos], offsets, self.block_tokens)

    @staticmethod
    def from_lists(lists, block_tokens: int) -> PrefixBlocks:
        """From one sequence of ints per request (e.g. a trace's ``hash_ids`` column)."""
        lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        ids = np.fromiter((v for x in lists for v in x), dtype=np.int64, count=int(offsets[-1]))
        return PrefixBlocks(ids, offsets, int(block_tokens))

    def validate(self, n: int) -> None:
        """Raise ``ValueError`` if inconsistent with ``n`` requests (a builder bug, not user input)."""
        if self.offsets.shape != (n + 1,) or (n and (self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0))):
            raise ValueError(f"prefix offsets must be {n + 1} non-decreasing positions from 0")
        if self.ids.shape != (int(self.offsets[-1]),):
            raise ValueError("prefix ids do not match their offsets")
        if self.block_tokens < 1 or (len(self.ids) and self.ids.min() < 0):
            raise ValueError("prefix ids must be >= 0 and block_tokens >= 1")


@dataclass(frozen=True)
class Workload:
    """Requests sorted by ``arrival_s`` (seconds from the workload's start).

    Attributes:
        arrival_s: float64 arrival times, non-decreasing, >= 0.
        model: int32 index into ``models`` for each request.
        prompt_tokens: int32 prompt lengths, >= 1.
        output_tokens: int32 output lengths, >= 1 (the first token counts).
        models: served-model names; ``models[model[i]]`` is request i's model.
        duration_s: the workload's window length; arrivals lie in ``[0, duration_s)``.
        history: per model name, one float64 array of shape ``(n, 2)`` per previous day (oldest
            first): the arrivals of that day's same clock window as (seconds from the window's
            start, output tokens). Seasonal predictors turn them into in-flight load. Empty when
            the source has no history.
        meta: free-form description of how the workload was built (source, knobs, seed); written
            into the run directory so results are traceable.
        prefix: the requests' prompt-block ids (:class:`PrefixBlocks`), or None when the source
            says nothing about shared prefixes (engines with prefix caching then reuse a request's
            blocks only for that request, after a preemption).
    """

    arrival_s: np.ndarray
    model: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    models: tuple[str, ...]
    duration_s: float
    history: dict[str, list[np.ndarray]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    prefix: PrefixBlocks | None = None

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def validate(self) -> None:
        """Raise ``ValueError`` if the columns are inconsistent (a builder bug, not user input)."""
        n = len(self)
        for name in ("model", "prompt_tokens", "output_tokens"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"workload column {name} has shape {getattr(self, name).shape}, want ({n},)")
        if n and (np.any(np.diff(self.arrival_s) < 0) or self.arrival_s[0] < 0):
            raise ValueError("workload arrivals must be sorted and non-negative")
        if n and (self.model.min() < 0 or self.model.max() >= len(self.models)):
            raise ValueError("workload model index out of range")
        if n and (self.prompt_tokens.min() < 1 or self.output_tokens.min() < 1):
            raise ValueError("workload token counts must be >= 1")
        if self.prefix is not None:
            self.prefix.validate(n)

    def select_models(self) -> list[np.ndarray]:
        """Indices of each model's requests, in arrival order."""
        return [np.flatnonzero(self.model == j) for j in range(len(self.models))]
