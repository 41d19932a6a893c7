"""Candidate GPU groups for one new prewarmed replica (warmserve.md section 4, step 3).

A group is ``tp`` GPUs inside one node. Inside a node GPUs are bits of an integer mask (bit ``j``
is the node's ``j``-th GPU), so the nesting rules become mask algebra that numpy evaluates for all
nodes and all same-size subsets at once:

* every GPU of the group has enough free memory and holds no replica of the same model;
* for every replica ``r`` on a GPU of the group: ``tp_r <= tp`` -> ``r.gpus ⊆ group`` (equal tp
  together with the next rule means ``group == r.gpus``); ``tp_r >= tp`` -> ``group ⊆ r.gpus``.

:class:`ReplicaTable` is a working copy of the replicas per node that a placement call extends as
it commits new replicas, so later candidates see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np


def subset_masks(n_gpus: int, size: int) -> np.ndarray:
    """All ``size``-subsets of ``range(n_gpus)`` as bit masks, in lexicographic order of their
    sorted members (so the first of equal candidates is the one with the lowest GPU ids)."""
    if not 0 < size <= n_gpus:
        return np.zeros(0, dtype=np.int64)
    return np.array([sum(1 << j for j in c) for c in combinations(range(n_gpus), size)], dtype=np.int64)


def mask_members(mask: int, n_gpus: int) -> tuple[int, ...]:
    """Local GPU indices set in ``mask``, ascending."""
    return tuple(j for j in range(n_gpus) if (mask >> j) & 1)


class ReplicaTable:
    """Replicas per node as padded arrays (node, slot): GPU mask, tp, model index, score.

    A slot with model index -1 is empty. Mutable, local to one placement call.

    Args:
        n_nodes: number of nodes.
        gpus_per_node: GPUs per node (at most 62, the bits of an int64 mask).
        slots: initial slots per node (grown on demand).
    """

    def __init__(self, n_nodes: int, gpus_per_node: int, slots: int = 4) -> None:
        if gpus_per_node > 62:
            raise ValueError(f"at most 62 GPUs per node are supported, got {gpus_per_node}")
        self.n_nodes = n_nodes
        self.gpus_per_node = gpus_per_node
        slots = max(int(slots), 1)
        self.mask = np.zeros((n_nodes, slots), dtype=np.int64)
        self.tp = np.zeros((n_nodes, slots), dtype=np.int64)
        self.model = np.full((n_nodes, slots), -1, dtype=np.int64)
        self.score = np.zeros((n_nodes, slots), dtype=np.float64)
        self.count = np.zeros(n_nodes, dtype=np.int64)

    def add(self, node: int, mask: int, tp: int, model: int, score: float) -> None:
        """Put a replica of model index ``model`` on the GPUs of ``mask`` in ``node``."""
        slot = int(self.count[node])
        if slot == self.mask.shape[1]:
            grow = self.mask.shape[1]
            self.mask = np.pad(self.mask, ((0, 0), (0, grow)))
            self.tp = np.pad(self.tp, ((0, 0), (0, grow)))
            self.model = np.pad(self.model, ((0, 0), (0, grow)), constant_values=-1)
            self.score = np.pad(self.score, ((0, 0), (0, grow)))
        self.mask[node, slot] = mask
        self.tp[node, slot] = tp
        self.model[node, slot] = model
        self.score[node, slot] = score
        self.count[node] += 1


@dataclass(frozen=True)
class GroupScan:
    """Every candidate group of one new replica on the nodes that could hold one.

    ``nodes`` are those node ids, ascending (nodes with fewer than ``tp`` eligible GPUs are left
    out); ``ok[i, k]`` says whether subset ``k`` of ``masks`` on ``nodes[i]`` is allowed;
    ``max_score``/``sum_score`` are over the distinct replicas that group overlaps (0 when none).
    """

    masks: np.ndarray  # (K,) int64
    nodes: np.ndarray  # (n,) int64
    ok: np.ndarray  # (n, K) bool
    max_score: np.ndarray  # (n, K) float
    sum_score: np.ndarray  # (n, K) float


def _popcount(x: np.ndarray, bits: int) -> np.ndarray:
    """Set bits among the low ``bits`` of each element of ``x``."""
    out = np.zeros_like(x)
    for j in range(bits):
        out += (x >> j) & 1
    return out


def scan_groups(table: ReplicaTable, free: np.ndarray, need: int, tp: int, model: int,
                masks: np.ndarray) -> GroupScan:
    """Evaluate every ``tp``-subset (``masks``) of every node for a new replica of model index
    ``model`` needing ``need`` bytes on each GPU; ``free`` is (nodes, gpus_per_node) bytes.

    Cost: O(nodes x slots x gpus) to find eligible GPUs, then O(n x K x (gpus + slots)) on the n
    nodes with at least ``tp`` eligible GPUs only, so a full cluster is scanned cheaply."""
    g = table.gpus_per_node
    bit = np.int64(1) << np.arange(g, dtype=np.int64)  # (G,)
    full = np.int64((1 << g) - 1)
    on = (table.mask[:, :, None] & bit[None, None, :]) != 0  # (N, S, G): replica on GPU
    same = (on & (table.model == model)[:, :, None]).any(axis=1)  # (N, G)
    eligible = (free >= need) & ~same
    elig_mask = (eligible * bit).sum(axis=1)  # (N,)
    nodes = np.flatnonzero(_popcount(elig_mask, g) >= tp)
    k = masks.shape[0]
    if nodes.size == 0 or k == 0:
        empty = np.zeros((0, k))
        return GroupScan(masks, nodes, empty.astype(bool), empty, empty)

    rmask, rtp, on = table.mask[nodes], table.tp[nodes], on[nodes]
    live = table.model[nodes] >= 0  # (n, S)
    le = on & (live & (rtp <= tp))[:, :, None]
    ge = on & (live & (rtp >= tp))[:, :, None]
    must_have = np.bitwise_or.reduce(np.where(le, rmask[:, :, None], 0), axis=1)  # (n, G)
    may_have = np.bitwise_and.reduce(np.where(ge, rmask[:, :, None], full), axis=1)  # (n, G)

    # Union of must_have and intersection of may_have over each subset's members.
    member = (masks[:, None] & bit[None, :]) != 0  # (K, G)
    union = np.zeros((nodes.size, k), dtype=np.int64)
    inter = np.full((nodes.size, k), full, dtype=np.int64)
    for j in range(g):
        sel = member[:, j]
        union[:, sel] |= must_have[:, j, None]
        inter[:, sel] &= may_have[:, j, None]
    m = masks[None, :]
    ok = ((m & ~elig_mask[nodes, None]) == 0) & ((union & ~m) == 0) & ((m & ~inter) == 0)

    overlap = (rmask[:, :, None] & masks[None, None, :]) != 0  # (n, S, K)
    weighted = np.where(overlap, table.score[nodes][:, :, None], 0.0)
    return GroupScan(masks, nodes, ok, weighted.max(axis=1), weighted.sum(axis=1))


def choose_group(scan: GroupScan, score: float) -> tuple[int, int] | None:
    """Two-stage choice: among allowed groups whose ``max_score < score`` (the new replica outranks
    every replica it overlaps) the smallest ``sum_score``; else the smallest ``sum_score`` of all
    allowed groups; ``None`` if none is allowed. Ties go to the lowest GPU ids.

    Returns ``(node, k)`` (``k`` indexes ``scan.masks``)."""
    if not scan.ok.any():
        return None
    outrank = scan.ok & (scan.max_score < score)
    pool = outrank if outrank.any() else scan.ok
    cost = np.where(pool, scan.sum_score, np.inf)
    flat = int(np.argmin(cost))  # first minimum: lowest node, then lexicographic subset
    i, k = divmod(flat, scan.masks.shape[0])
    return int(scan.nodes[i]), k
