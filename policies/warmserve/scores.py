"""Replica demand and scores of the evict-aware placement (warmserve.md section 4, steps 1-2).

Pure functions; :class:`warmsim.policies.warmserve.placement.EvictAwarePlacer` and
:class:`warmsim.policies.warmserve.placement.RoundRobinPlacer` both use them.
"""

from __future__ import annotations

import math

GIB = 1 << 30


def replica_demand(avg: float, peak: float, running: int, per_instance: int) -> tuple[int, int]:
    """Foundation and burst replica counts ``(n_found, n_burst)`` for one model.

    ``n_found = max(ceil(avg / per_instance) - running, 0)`` and
    ``n_burst = max(ceil(peak / per_instance) - running - n_found, 0)``, where ``running`` is the
    number of live instances of the model and ``avg``/``peak`` its predicted in-flight load.
    """
    if per_instance <= 0:
        raise ValueError(f"per_instance must be > 0, got {per_instance}")
    n_found = max(math.ceil(avg / per_instance) - running, 0)
    n_burst = max(math.ceil(peak / per_instance) - running - n_found, 0)
    return n_found, n_burst


def cold_start_s(weight_bytes: int, tp: int, bandwidth_gib_s: float) -> float:
    """Time to load one GPU's shard: ``weight_bytes / tp / 2**30 / bandwidth_gib_s`` seconds."""
    return weight_bytes / tp / GIB / bandwidth_gib_s


def burst_factor(avg: float, peak: float, zero_avg_as: float) -> float:
    """``peak / avg``; when ``avg <= 0`` (a model predicted idle on average but with a peak) the
    denominator is ``zero_avg_as`` instead (the artifact divides by zero there)."""
    if avg > 0:
        return peak / avg
    return peak / zero_avg_as


def replica_scores(avg: float, peak: float, running: int, *, weight_bytes: int, tp: int,
                   per_instance: int, bandwidth_gib_s: float, zero_avg_as: float) -> list[float]:
    """Scores of a model's wanted replicas, foundation ones first, then burst ones.

    With ``n = n_found + n_burst`` and ``cold`` from :func:`cold_start_s`: foundation replica ``i``
    scores ``exp(-i / n) * cold``; burst replica ``i`` scores
    ``exp(-(n_found + i) / n) * cold * burst_factor``. Returns ``[]`` when nothing is wanted.
    """
    n_found, n_burst = replica_demand(avg, peak, running, per_instance)
    n = n_found + n_burst
    if n == 0:
        return []
    cold = cold_start_s(weight_bytes, tp, bandwidth_gib_s)
    scores = [math.exp(-i / n) * cold for i in range(n_found)]
    if n_burst:
        factor = burst_factor(avg, peak, zero_avg_as)
        scores += [math.exp(-(n_found + i) / n) * cold * factor for i in range(n_burst)]
    return scores
