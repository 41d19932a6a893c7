"""MuxServe-style static colocated placement, simplified to fixed tensor-parallel degrees.

MuxServe (ICML'24) enumerates ways to cut each node into "LLM units" (GPU meshes), greedily puts
each model on the unit where an estimated throughput gain is largest (most demanding models first;
a model is sharded over its whole unit), splits each unit's SMs between its models with MPS and its
KV memory in proportion to ``rate x KV bytes per token``. In this simulator a model has one TP
degree, so "more GPUs for a popular model" becomes *more engines* rather than a larger unit, and the
throughput estimator is replaced by a proportional rule:

1. **Compute demand.** ``w_m = rate_m x weight_bytes_m`` (forward FLOPs per token are ~2 x params,
   so weight bytes stand in for per-token compute, like MuxServe's ``rate_scale``). Model ``m``'s fair
   part of the cluster is ``c_m = n_gpus x w_m / sum(w)`` GPUs.
2. **Engines.** ``n_m = max(1, ceil(c_m / tp_m))`` engines of ``tp_m`` GPUs each, every one asking
   for share ``d_m = clip(c_m / (n_m tp_m), min_share, 1)`` of its GPUs. Popular models get several
   engines with (nearly) whole GPUs; unpopular ones get one engine with a small share, colocated.
3. **Packing.** Engines go onto aligned ``tp``-GPU groups inside a node. First one engine per model,
   largest per-GPU memory need first (so the hard ones fit), then the extra engines round by round in
   order of demand. Each goes to the feasible group with the smallest resulting share load, then
   the least memory used, then the lowest GPU id. Feasible: every GPU keeps room for the weights
   shard plus ``min_kv_tokens`` of KV (and ``reserve_bytes_per_engine``), holds no engine of the same
   model, and holds fewer than ``floor(1 / min_share)`` engines. A first engine that fits nowhere is
   a :class:`warmsim.sim.errors.UserError`; an extra engine that fits nowhere is dropped.
4. **Compute shares.** On each GPU the asked-for shares are normalised to sum to 1 (scaled up when
   they sum to less, as WarmServe's artifact normalises MPS percentages per unit; scaled down above
   ``min_share`` when they sum to more). An engine's share is the smallest it got on any of its GPUs,
   rounded down to ``share_quantum``, so every GPU's shares sum to at most 1.
5. **KV memory.** ``kv_split="rate"`` (MuxServe's estimator): on each GPU, what is left after all
   shards and minimum KV is split in proportion to ``engine rate x KV bytes per token per GPU``.
   ``kv_split="block"`` (WarmServe's artifact): each engine's whole memory on a GPU is proportional
   to its KV bytes per token per GPU (its KV block size), weights included; an engine left with
   less than its minimum KV is a :class:`UserError`. An engine's KV per GPU is the smallest it got on
   any of its GPUs, rounded down to the 2 MiB chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from warmsim.policies.types import Activate, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_TOKENS, Knob, bounded, choice, count, nonneg
from warmsim.sim.models import CHUNK_BYTES, align_up

GIB = float(1 << 30)
KV_SPLITS = ("rate", "block")


@dataclass(frozen=True)
class MuxEngine:
    """One colocated engine of the plan: ``model`` on ``gpus`` with its compute share and KV bytes."""

    model: str
    gpus: tuple[int, ...]
    compute_share: float
    kv_bytes_per_gpu: int
    #: The share the engine asked for before per-GPU normalisation (for reports and tests).
    demand_share: float


@dataclass(frozen=True)
class MuxPlan:
    """A MuxServe placement: its engines (the simulator checks their shares and memory on each GPU)."""

    engines: tuple[MuxEngine, ...]

    def activates(self) -> list[Activate]:
        """One prewarmed :class:`Activate` per engine, ordered by first GPU then model."""
        ordered = sorted(self.engines, key=lambda e: (e.gpus[0], e.model))
        return [Activate(model=e.model, gpus=e.gpus, source="prewarmed", compute_share=e.compute_share,
                         kv_bytes_per_gpu=e.kv_bytes_per_gpu) for e in ordered]


@dataclass(frozen=True)
@bounded(kv_bytes_per_token=Knob("mapping", null=True, help="model -> KV bytes per token; null = the model's"),
         min_share=Knob("float", 0, 1, lo_open=True, help="smallest compute share an engine gets"),
         min_kv_tokens=count("KV tokens each engine must hold", MAX_TOKENS, lo=0),
         kv_split=choice("how KV memory is split between engines", *KV_SPLITS),
         reserve_bytes_per_engine=nonneg("bytes each engine keeps beyond weights and KV", 1e15),
         max_engines_per_model=count("cap on engines per model; null = none", 10_000, null=True),
         share_quantum=Knob("float", 0, 1, lo_open=True, help="granularity of compute shares"))
class MuxServePlacer:
    """Static colocated placement at time 0 (``InitialPlacer``); see the module docstring."""

    #: KV-cache bytes per token of each model, whole model (``ModelShape.kv_bytes_per_token``). The
    #: snapshot's ``ModelView`` does not carry it, so the builder passes it; ``None`` reads a
    #: ``kv_bytes_per_token`` attribute of ``ModelView`` if a later version adds one.
    kv_bytes_per_token: Mapping[str, int] | None = None
    #: Smallest compute share an engine gets, and ``1 / min_share`` caps engines per GPU. Default
    #: 0.1 [I]: MuxServe profiles MPS percentages in steps of 10.
    min_share: float = 0.1
    #: Tokens of KV cache every engine keeps at least. Default 2048 [I]: one sequence at WarmServe's
    #: max model length (2048), so every engine can serve its longest request.
    min_kv_tokens: int = 2048
    #: How KV memory is split between colocated engines: ``"rate"`` (MuxServe's estimator, default)
    #: or ``"block"`` (WarmServe's artifact: memory in proportion to per-model KV block size).
    kv_split: str = "rate"
    #: Bytes held back per engine per GPU for activations and the process (not given to weights or
    #: KV). Default 0: the simulator's GPU capacity already excludes the runtime's reserve [I];
    #: MuxServe's own placer reserves about 7.6 GB per model (6 GB activations + 2 x 0.8 GB processes).
    reserve_bytes_per_engine: int = 0
    #: Cap on engines per model; ``None``: as many as its demand asks for.
    max_engines_per_model: int | None = None
    #: Compute shares are rounded down to a multiple of this, so per-GPU sums stay <= 1 in floating
    #: point. Default 1e-6.
    share_quantum: float = 1e-6

    def __post_init__(self) -> None:
        if not 0 < self.share_quantum <= self.min_share:
            raise UserError(f"muxserve: share_quantum must be in (0, min_share], got {self.share_quantum}")

    # -- the InitialPlacer protocol -----------------------------------------------------------------

    def place(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[Activate]:
        """Engines created ready at time 0 (``source='prewarmed'``), one per (model, GPU group)."""
        return self.plan(snap, expected_rate).activates()

    # -- the algorithm ------------------------------------------------------------------------------

    def plan(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> MuxPlan:
        """The full placement (engines with shares and KV); :meth:`place` returns its activates."""
        rates = self._rates(snap, expected_rate)
        names = sorted(snap.models)
        gpn = snap.gpus_per_node
        n_gpus = len(snap.gpus)
        kvpt = self._kv_per_token(snap)
        kvpg = {m: -(-kvpt[m] // snap.models[m].tp) for m in names}
        min_kv = {m: align_up(self.min_kv_tokens * kvpg[m]) for m in names}
        need = {m: snap.models[m].shard_bytes + min_kv[m] + self.reserve_bytes_per_engine for m in names}

        w = {m: rates[m] * snap.models[m].weight_bytes for m in names}
        total_w = sum(w.values())
        n_want: dict[str, int] = {}
        demand: dict[str, float] = {}
        for m in names:
            tp = snap.models[m].tp
            c = n_gpus * w[m] / total_w if total_w > 0 else 0.0
            n = max(1, math.ceil(c / tp - 1e-9))
            n = min(n, snap.n_nodes * (gpn // tp))
            if self.max_engines_per_model is not None:
                n = min(n, self.max_engines_per_model)
            n_want[m] = n
            demand[m] = min(1.0, max(self.min_share, c / (n * tp)))

        packer = _Packer(snap, self.min_share)
        placed = packer.placed
        for m in sorted(names, key=lambda m: (-need[m], -w[m], m)):
            group = packer.best_group(m, snap.models[m].tp, need[m], demand[m])
            if group is None:
                raise UserError(self._unfit_message(snap, packer, m, need[m], min_kv[m]))
            packer.add(m, group, need[m], demand[m])
        active = [m for m in sorted(names, key=lambda m: (-w[m], m)) if n_want[m] > 1]
        for _ in range(1, max(n_want.values(), default=1)):
            still = []
            for m in active:
                if sum(1 for pm, _ in placed if pm == m) >= n_want[m]:
                    continue
                group = packer.best_group(m, snap.models[m].tp, need[m], demand[m])
                if group is None:
                    continue  # no room for another engine of m: it runs with fewer
                packer.add(m, group, need[m], demand[m])
                still.append(m)
            active = still

        engines_of = {m: sum(1 for pm, _ in placed if pm == m) for m in names}
        shares = self._shares(placed, demand)
        kv = self._kv(snap, placed, rates, engines_of, kvpg, min_kv)
        engines = tuple(MuxEngine(model=m, gpus=g, compute_share=shares[i], kv_bytes_per_gpu=kv[i],
                                  demand_share=demand[m]) for i, (m, g) in enumerate(placed))
        return MuxPlan(engines)

    def _rates(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> dict[str, float]:
        unknown = sorted(set(expected_rate) - set(snap.models))
        if unknown:
            raise UserError(f"muxserve: expected_rate names unknown model(s) {', '.join(unknown)} "
                            f"(served: {', '.join(sorted(snap.models))})")
        rates = {m: float(expected_rate.get(m, 0.0)) for m in snap.models}
        bad = [m for m, r in rates.items() if not (r >= 0 and math.isfinite(r))]
        if bad:
            raise UserError(f"muxserve: expected rate of {', '.join(sorted(bad))} must be a finite number >= 0")
        for m, mv in snap.models.items():
            if mv.tp > snap.gpus_per_node:
                raise UserError(f"muxserve: model '{m}' needs tp {mv.tp} GPUs in one node but nodes "
                                f"have {snap.gpus_per_node}")
        return rates

    def _kv_per_token(self, snap: Snapshot) -> dict[str, int]:
        given = self.kv_bytes_per_token or {}
        out: dict[str, int] = {}
        for m, mv in snap.models.items():
            v = given.get(m, getattr(mv, "kv_bytes_per_token", None))
            if v is None or v <= 0:
                raise UserError(f"muxserve: kv_bytes_per_token not given for model '{m}' (pass "
                                f"MuxServePlacer(kv_bytes_per_token={{name: ModelShape.kv_bytes_per_token}}))")
            out[m] = int(v)
        return out

    def _unfit_message(self, snap: Snapshot, packer: _Packer, model: str, need: int, min_kv: int) -> str:
        tp = snap.models[model].tp
        best = max((min(packer.room(g) for g in grp) for grp in packer.groups(tp)), default=0)
        others = sorted({m for m, _ in packer.placed})
        after = f" after placing {', '.join(others)}" if others else ""
        msg = (f"muxserve: model '{model}' (tp {tp}) does not fit: it needs {need / GIB:.2f} GiB on each of "
               f"{tp} GPU(s) (weights shard {snap.models[model].shard_bytes / GIB:.2f} GiB + KV for "
               f"{self.min_kv_tokens} tokens {min_kv / GIB:.2f} GiB + reserve "
               f"{self.reserve_bytes_per_engine / GIB:.2f} GiB) but the most left on any {tp}-GPU group "
               f"is {best / GIB:.2f} GiB{after}")
        if best >= need:
            msg += (f"; the groups with room already hold {packer.max_per_gpu} engines per GPU "
                    f"(the limit for min_share {self.min_share})")
        return msg

    def _shares(self, placed: list[tuple[str, tuple[int, ...]]], demand: Mapping[str, float]) -> list[float]:
        per_gpu: dict[int, list[int]] = {}
        for i, (_, gpus) in enumerate(placed):
            for g in gpus:
                per_gpu.setdefault(g, []).append(i)
        got: list[float] = [1.0] * len(placed)
        for idx in per_gpu.values():
            d = [demand[placed[i][0]] for i in idx]
            total = sum(d)
            if total <= 1.0:
                alloc = [x / total for x in d]
            else:
                extra = [x - self.min_share for x in d]
                spare = 1.0 - len(d) * self.min_share
                sx = sum(extra)
                alloc = [self.min_share + (spare * e / sx if sx > 0 else spare / len(d)) for e in extra]
            for i, a in zip(idx, alloc):
                got[i] = min(got[i], a)
        steps = round(1.0 / self.share_quantum)
        return [max(1, math.floor(a * steps + 1e-9)) / steps if a < 1.0 else 1.0 for a in got]

    def _kv(self, snap: Snapshot, placed: list[tuple[str, tuple[int, ...]]], rates: Mapping[str, float],
            engines_of: Mapping[str, int], kvpg: Mapping[str, int], min_kv: Mapping[str, int]) -> list[int]:
        per_gpu: dict[int, list[int]] = {}
        for i, (_, gpus) in enumerate(placed):
            for g in gpus:
                per_gpu.setdefault(g, []).append(i)
        got: list[float] = [math.inf] * len(placed)
        reserve = self.reserve_bytes_per_engine
        for g, idx in per_gpu.items():
            free = snap.gpu(g).free_bytes
            models = [placed[i][0] for i in idx]
            if self.kv_split == "rate":
                left = free - sum(snap.models[m].shard_bytes + min_kv[m] + reserve for m in models)
                weights = [rates[m] / engines_of[m] * kvpg[m] for m in models]
                sw = sum(weights)
                alloc = [min_kv[m] + left * (wt / sw if sw > 0 else 1 / len(models))
                         for m, wt in zip(models, weights)]
            else:
                sk = sum(kvpg[m] for m in models)
                alloc = [free * kvpg[m] / sk - snap.models[m].shard_bytes - reserve for m in models]
                for m, a in zip(models, alloc):
                    if a < min_kv[m]:
                        raise UserError(
                            f"muxserve: with kv_split='block' model '{m}' gets {max(a, 0) / GIB:.2f} GiB of KV "
                            f"on GPU {g} (memory split by KV block size, weights shard "
                            f"{snap.models[m].shard_bytes / GIB:.2f} GiB included) but needs "
                            f"{min_kv[m] / GIB:.2f} GiB for {self.min_kv_tokens} tokens; use kv_split='rate'")
            for i, a in zip(idx, alloc):
                got[i] = min(got[i], a)
        return [int(a // CHUNK_BYTES) * CHUNK_BYTES for a in got]


class _Packer:
    """Per-GPU bookkeeping while engines are packed (internal to one :meth:`MuxServePlacer.plan`)."""

    def __init__(self, snap: Snapshot, min_share: float) -> None:
        self.snap = snap
        self.max_per_gpu = max(1, math.floor(1.0 / min_share + 1e-9))
        self.used = {g.id: 0 for g in snap.gpus}
        self.load = {g.id: 0.0 for g in snap.gpus}
        self.models_on: dict[int, set[str]] = {g.id: set() for g in snap.gpus}
        self.placed: list[tuple[str, tuple[int, ...]]] = []

    def room(self, gpu: int) -> int:
        return self.snap.gpu(gpu).free_bytes - self.used[gpu]

    def groups(self, tp: int):
        """Aligned ``tp``-GPU groups inside each node, in GPU order."""
        gpn = self.snap.gpus_per_node
        for node in range(self.snap.n_nodes):
            base = node * gpn
            for k in range(gpn // tp):
                yield tuple(range(base + k * tp, base + (k + 1) * tp))

    def best_group(self, model: str, tp: int, need: int, demand: float) -> tuple[int, ...] | None:
        best_key, best = None, None
        for grp in self.groups(tp):
            if any(self.room(g) < need or len(self.models_on[g]) >= self.max_per_gpu
                   or model in self.models_on[g] for g in grp):
                continue
            key = (max(self.load[g] for g in grp) + demand,
                   max((self.used[g] + need) / self.snap.gpu(g).free_bytes for g in grp), grp[0])
            if best_key is None or key < best_key:
                best_key, best = key, grp
        return best

    def add(self, model: str, group: tuple[int, ...], need: int, demand: float) -> None:
        for g in group:
            self.used[g] += need
            self.load[g] += demand
            self.models_on[g].add(model)
        self.placed.append((model, group))
