"""The canonical workload the simulator replays.

A :class:`Workload` is a column table of requests sorted by arrival, one row per request, plus the
names of the models that the ``model`` column indexes, and optional per-model history that seasonal
predictors read (the same window on previous days).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    """

    arrival_s: np.ndarray
    model: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    models: tuple[str, ...]
    duration_s: float
    history: dict[str, list[np.ndarray]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

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

    def select_models(self) -> list[np.ndarray]:
        """Indices of each model's requests, in arrival order."""
        return [np.flatnonzero(self.model == j) for j in range(len(self.models))]
