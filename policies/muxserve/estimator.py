"""MuxServe's placement estimator: a model's throughput on a mesh at a compute share, and the greedy
choice of a mesh for each model.

Every public name here is the warmsim form of a function of MuxServe's ``muxserve/muxsched/placement.py``
(read at ``hao-ai-lab/MuxServe@2249cfa``); each docstring names its source. The step times come from
the run's cost model at TP = mesh size (:class:`MeshCosts`) times the MPS slowdown table the simulator
charges (a ``SharingModel``), where MuxServe reads its profiled ``llama.json``.
:class:`warmsim.policies.muxserve.mesh.MuxServeMeshPlacer` is the placer that uses it (its module
docstring says what the artifact takes from this and what is simplified).

Units: rates and throughputs in requests/s, memory in bytes, percentages of a GPU's SMs in 0..100,
``pool`` the bytes one GPU offers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from warmsim.sim.errors import UserError
from warmsim.sim.models import align_up

if TYPE_CHECKING:
    from warmsim.policies.base import SharingModel
    from warmsim.policies.types import ModelView

#: MuxServe's candidate mesh splits of one node, by GPUs per node, in its enumeration order
#: (``Cluster.generate_candidate_clusters``).
SPLITS: dict[int, tuple[tuple[int, ...], ...]] = {
    8: ((8,), (4, 4), (4, 2, 2), (4, 2, 1, 1), (4, 1, 1, 1, 1), (2, 2, 2, 2), (2, 2, 2, 1, 1),
        (2, 2, 1, 1, 1, 1), (2, 1, 1, 1, 1, 1, 1), (1, 1, 1, 1, 1, 1, 1, 1)),
    6: ((4, 2), (4, 1, 1), (2, 2, 2), (2, 2, 1, 1), (2, 1, 1, 1, 1), (1, 1, 1, 1, 1, 1)),
    4: ((4,), (2, 2), (2, 1, 1), (1, 1, 1, 1)),
    2: ((2,), (1, 1)),
    1: ((1,),),
}

#: The mesh sizes a model may be given (``LLM.set_candidate_mesh_size``), ascending.
MESH_SIZES: tuple[int, ...] = (1, 2, 4, 8)


class MeshCosts(Protocol):
    """Step times of a model at a given TP degree, alone on whole GPUs (the builder adapts the run's
    cost model)."""

    def prefill_s(self, model: str, tp: int, tokens: int, seqs: int) -> float:
        """One prefill step over ``seqs`` sequences totalling ``tokens`` tokens."""

    def decode_s(self, model: str, tp: int, batch: int, ctx_tokens: int) -> float:
        """One decode step of ``batch`` sequences holding ``ctx_tokens`` tokens of context."""


def by_size(table: Sequence[Sequence[float]], params_b: float) -> float:
    """The value of the first ``[max_params_b, value]`` row whose bound is >= ``params_b`` (the last
    row's value past every bound): how MuxServe keys ``prefill_mps_dict`` and ``get_latency``'s
    scheduling overhead by model size."""
    for bound, value in table:
        if params_b <= bound:
            return float(value)
    return float(table[-1][1])


@dataclass
class LLM:
    """One model as MuxServe's estimator sees it (``muxsched``'s ``LLM``).

    ``rate`` is the planned rate (req/s), ``weight`` the whole model's weight bytes, ``kvpt`` its KV
    bytes per token (whole model), ``params_b`` its size in billions of parameters, ``prefill_pct``
    its prefill MPS percentage, ``sched_s`` its decode scheduling overhead per sequence (s).
    ``cand`` maps a mesh size to (decode %, batch meeting the rate, throughput, satisfied), filled by
    :meth:`MeshEstimator.set_candidates`; ``min_mesh`` is its smallest key.
    """

    name: str
    rate: float
    weight: int
    kvpt: int
    params_b: float
    prefill_pct: float
    sched_s: float
    min_mesh: int = 0
    cand: dict[int, tuple[int, int, float, bool]] = field(default_factory=dict)

    @property
    def rate_scale(self) -> float:
        """MuxServe's ``rate_scale``: the model's size relative to a 7B."""
        return self.params_b / 7.0


@dataclass
class Mesh:
    """One mesh of ``ngpus`` GPUs (``MeshGroup``): its models as (LLM, decode %) pairs in the order
    they joined, its amortised compute ``tag`` and its tracked estimated throughput ``tpt``."""

    ngpus: int
    models: list[tuple[LLM, int]] = field(default_factory=list)
    tag: float = 0.0
    tpt: float = 0.0


def llm_list(models: Mapping[str, ModelView], rates: Mapping[str, float], kv_bytes_per_token: Mapping[str, int],
             prefill_mps: Sequence[Sequence[float]], sched_overhead_s: Sequence[Sequence[float]]) -> list[LLM]:
    """The estimator's LLMs, in ``PlacementOptimizer.optimize`` / ``smart_placement`` order.

    Each model gets its planned rate from ``rates``, its KV bytes per token from
    ``kv_bytes_per_token`` (else the model's own; UserError when neither is > 0), its size as weight
    bytes / 2 / 1e9 (fp16), and its prefill percentage and scheduling overhead from the by-size
    tables (:func:`by_size`). Order: ``rate x rate_scale``, then ``rate_scale``, then name, all
    descending.
    """
    kv = kv_bytes_per_token
    out = []
    for name in sorted(models):
        mv = models[name]
        rate = rates[name]
        kvpt = int(kv.get(name, mv.kv_bytes_per_token))
        if kvpt <= 0:
            raise UserError(f"muxserve: KV bytes per token of model '{name}' unknown")
        params_b = mv.weight_bytes / 2 / 1e9
        out.append(LLM(name, rate, mv.weight_bytes, kvpt, params_b, by_size(prefill_mps, params_b),
                       by_size(sched_overhead_s, params_b)))
    out.sort(key=lambda x: (x.rate * x.rate_scale, x.rate_scale, x.name), reverse=True)
    return out


@dataclass(frozen=True, kw_only=True)
class MeshEstimator:
    """MuxServe's ``CostEstimator`` and ``PlacementOptimizer`` over one node's meshes.

    The settings are :class:`~warmsim.policies.muxserve.mesh.MuxServeMeshPlacer`'s knobs of the same
    names (where each value comes from is documented there); the placer builds this with
    ``MuxServeMeshPlacer.estimator()``.
    """

    costs: MeshCosts
    sharing: SharingModel
    avg_prompt_len: int
    avg_output_len: int
    decode_mps_levels: tuple[int, ...]
    max_batch: int
    reserve_bytes_per_model: int
    overload_threshold_pct: float
    slack_abs: float
    slack_rel: float
    min_kv_tokens: int

    def step_times(self, llm: LLM, g: int, decode_pct: float, bs: int) -> tuple[float, float]:
        """(t_decode, t_prefill) of a batch of ``bs`` on a mesh of ``g`` GPUs (``get_latency``).

        Decode: one step of ``bs`` sequences holding ``int(bs x (prompt + output / 2))`` context
        tokens at TP ``g``, times the decode slowdown at ``decode_pct`` %, plus ``sched_s`` per
        sequence. Prefill: ``bs`` prompts (``bs x prompt`` tokens) at TP ``g``, times the prefill
        slowdown at the model's prefill % (at most 100).
        """
        costs, sharing = self.costs, self.sharing
        p, o = self.avg_prompt_len, self.avg_output_len
        ctx = int(bs * (p + o / 2))
        t_dec = costs.decode_s(llm.name, g, bs, ctx) * sharing.factor("decode", decode_pct / 100, bs, 0)
        t_dec += llm.sched_s * bs
        t_pre = costs.prefill_s(llm.name, g, bs * p, bs) * \
            sharing.factor("prefill", min(llm.prefill_pct, 100.0) / 100, bs, 0, tokens=bs * p)
        return t_dec, t_pre

    def throughput(self, llm: LLM, g: int, decode_pct: float, bs: int, prefill_extra: float = 0.0) -> float:
        """Requests/s of a batch of ``bs`` (``estimate_throughput``): ``bs / (t_decode x output +
        t_prefill + prefill_extra)``, ``prefill_extra`` being other models' prefills on the mesh."""
        t_dec, t_pre = self.step_times(llm, g, decode_pct, bs)
        return bs / (t_dec * self.avg_output_len + t_pre + prefill_extra)

    def max_batch_for_cache(self, llm: LLM, cache_bytes: float) -> int:
        """The largest batch whose mean sequences (prompt + output tokens) fit ``cache_bytes`` of KV,
        within 1 and ``max_batch``."""
        per_seq = llm.kvpt * (self.avg_prompt_len + self.avg_output_len)
        return int(max(1, min(cache_bytes // per_seq, self.max_batch)))

    def meets_rate(self, tpt: float, rate: float) -> bool:
        """MuxServe's "satisfied": ``tpt + min(slack_abs, slack_rel x tpt) > rate``."""
        return tpt + min(self.slack_abs, self.slack_rel * tpt) > rate

    def estimate_throughput(self, llm: LLM, g: int, decode_pct: float, cache_bytes: float) -> tuple[bool, float, int]:
        """``estimate_throughput``: (satisfied, throughput, batch) at the smallest batch whose
        throughput reaches the model's rate (else the KV-limited batch); the throughput reported is
        the rate itself when satisfied."""
        hi = self.max_batch_for_cache(llm, cache_bytes)
        if self.throughput(llm, g, decode_pct, hi) < llm.rate:
            bs = hi
        else:
            lo = 1
            while lo < hi:
                mid = (lo + hi) // 2
                if self.throughput(llm, g, decode_pct, mid) >= llm.rate:
                    hi = mid
                else:
                    lo = mid + 1
            bs = lo
        tpt = self.throughput(llm, g, decode_pct, bs)
        ok = self.meets_rate(tpt, llm.rate)
        return ok, (llm.rate if ok else tpt), bs

    def fits(self, weights: Sequence[int], kvpts: Sequence[int], g: int, pool: int) -> bool:
        """Models of these weights and KV bytes per token fit a mesh of ``g`` GPUs: each GPU holds every
        model's shard (ceil(weight / g), rounded up to chunks), ``reserve_bytes_per_model`` per model
        and KV for ``min_kv_tokens`` tokens per model (ceil(kvpt / g) per token, rounded up to chunks)
        within ``pool`` bytes."""
        per_gpu = sum(align_up(-(-w // g)) for w in weights) + len(weights) * self.reserve_bytes_per_model
        per_gpu += sum(align_up(self.min_kv_tokens * -(-k // g)) for k in kvpts)
        return per_gpu <= pool

    def set_candidates(self, llm: LLM, pool: int, ngpus: int) -> None:
        """``LLM.set_candidate_mesh_size`` / ``CostEstimator.estimate_mps``: fill ``llm.cand`` and
        ``llm.min_mesh``.

        For each mesh size of 1, 2, 4, 8 up to ``ngpus`` that the model fits (:meth:`fits`), with KV
        cache ``g x pool - weight - g x reserve``: the first decode percentage, ascending, whose
        estimate meets the rate, else the first with the highest throughput; percentages over 90 and
        the model's prefill percentage are skipped. UserError when no mesh size fits.
        """
        for g in MESH_SIZES:
            if g > ngpus or not self.fits([llm.weight], [llm.kvpt], g, pool):
                continue
            cache = g * pool - llm.weight - g * self.reserve_bytes_per_model
            best = None
            for pct in sorted(self.decode_mps_levels):
                if pct > 90 or pct == llm.prefill_pct:
                    continue
                ok, tpt, bs = self.estimate_throughput(llm, g, pct, cache)
                if ok:
                    best = (pct, bs, tpt, True)
                    break
                if best is None or tpt > best[2]:
                    best = (pct, bs, tpt, False)
            if best is not None:
                llm.cand[g] = best
        if not llm.cand:
            raise UserError(f"muxserve: model '{llm.name}' fits no mesh of 1, 2, 4 or 8 GPUs within the {ngpus} "
                            f"GPU(s) MuxServe may use (weights + {self.reserve_bytes_per_model / 1e9:.1f} GB reserve + "
                            f"KV for {self.min_kv_tokens} tokens per GPU)")
        llm.min_mesh = min(llm.cand)

    def kv_cache_size(self, mesh: Mesh, llms: Sequence[LLM], pool: int) -> float:
        """``estimate_kv_cache_size``: the mesh's memory (``ngpus x pool``) left after ``llms``'
        weights and a reserve per model per GPU, at least 0."""
        return max(0.0, mesh.ngpus * pool - sum(x.weight for x in llms)
                   - mesh.ngpus * len(llms) * self.reserve_bytes_per_model)

    def mesh_throughput(self, mesh: Mesh, pool: int) -> float:
        """``estimate_mesh_throughput``: the best rate-weighted mean throughput of the mesh's models.

        The KV cache (:meth:`kv_cache_size`) is split by ``kvpt x rate`` (evenly when every rate is
        0); each model starts at its :meth:`estimate_throughput` batch; every model's prefill counts
        in every model's round. Then, while a model lags its rate (with the :meth:`meets_rate`
        slack) below its KV-limited batch, the one with the lowest throughput / rate grows by one
        sequence. A mesh whose models all start at their limits scores 0, as in MuxServe; so does an
        empty mesh.
        """
        if not mesh.models:
            return 0.0
        llms = [x for x, _ in mesh.models]
        pcts = [p for _, p in mesh.models]
        g = mesh.ngpus
        cache = self.kv_cache_size(mesh, llms, pool)
        base = sum(x.kvpt * x.rate for x in llms)
        local = [(x.kvpt * x.rate / base * cache) if base > 0 else cache / len(llms) for x in llms]
        bss, max_bss = [], []
        for x, pct, c in zip(llms, pcts, local):
            _, _, bs = self.estimate_throughput(x, g, pct, c)
            bss.append(bs)
            max_bss.append(self.max_batch_for_cache(x, c))
        best = 0.0
        while any(b < m for b, m in zip(bss, max_bss)):
            times = [self.step_times(x, g, p, b) for x, p, b in zip(llms, pcts, bss)]
            pre = sum(t for _, t in times)
            tpts = [b / (td * self.avg_output_len + pre) for b, (td, _) in zip(bss, times)]
            total_rate = sum(x.rate for x in llms)
            mesh_tpt = sum(t * x.rate for t, x in zip(tpts, llms)) / total_rate if total_rate > 0 else 0.0
            best = max(best, mesh_tpt)
            lag, lag_ratio = None, math.inf
            for i, (t, x) in enumerate(zip(tpts, llms)):
                if t + min(self.slack_abs, self.slack_rel * t) < x.rate and bss[i] < max_bss[i]:
                    if t / x.rate < lag_ratio:
                        lag, lag_ratio = i, t / x.rate
            if lag is None:
                break
            bss[lag] += 1
        return best

    def can_place(self, mesh: Mesh, llm: LLM, pct: int, pool: int) -> bool:
        """``MeshGroup.can_place``: the mesh's models and ``llm`` fit (:meth:`fits`), and ``pct`` is
        within what the mesh's decode percentages leave of 100 plus ``overload_threshold_pct``."""
        llms = [x for x, _ in mesh.models] + [llm]
        if not self.fits([x.weight for x in llms], [x.kvpt for x in llms], mesh.ngpus, pool):
            return False
        remaining = 100.0 - sum(p for _, p in mesh.models)
        return remaining >= pct or remaining + self.overload_threshold_pct >= pct

    def smart_placement(self, llms: Sequence[LLM], meshes: list[Mesh], pool: int) -> list[Mesh] | None:
        """``smart_placement``: each LLM, in the given order, joins the mesh (at its candidate decode %
        for that mesh size, where :meth:`can_place` allows) whose :meth:`mesh_throughput` rises most
        over the mesh's tracked ``tpt``; on a tie the first mesh, unless a later one is smaller. Meshes
        are kept sorted by (``tag``, free memory) descending, the chosen mesh's ``tag`` dropping by
        ``rate x rate_scale / ngpus``. Returns the meshes in that order (filled in place), or None
        when an LLM can join none."""
        def order(ms: list[Mesh]) -> list[Mesh]:
            free = {id(m): m.ngpus * pool - sum(x.weight for x, _ in m.models) for m in ms}
            return sorted(ms, key=lambda m: (m.tag, free[id(m)]), reverse=True)

        meshes = order(meshes)
        for llm in llms:
            best, best_inc = None, -math.inf
            for mesh in meshes:
                cand = llm.cand.get(mesh.ngpus)
                if cand is None or not self.can_place(mesh, llm, cand[0], pool):
                    continue
                trial = Mesh(mesh.ngpus, mesh.models + [(llm, cand[0])])
                inc = self.mesh_throughput(trial, pool) - mesh.tpt
                if inc > best_inc or (inc == best_inc and best is not None and mesh.ngpus < best.ngpus):
                    best, best_inc = mesh, inc
            if best is None:
                return None
            best.models.append((llm, llm.cand[best.ngpus][0]))
            best.tpt += best_inc
            best.tag -= llm.rate * llm.rate_scale / best.ngpus
            meshes = order(meshes)
        return meshes

    def optimize(self, llms: Sequence[LLM], splits: Sequence[tuple[int, ...]], pool: int) -> list[Mesh] | None:
        """``PlacementOptimizer.optimize``: the meshes of the split, in ``splits``' order, whose
        :meth:`smart_placement` scores highest: the sum over meshes of :meth:`mesh_throughput` x the
        mesh's total rate, over all models' total rate (strictly higher wins, so the first on ties).
        A split is skipped when its largest mesh is below every model's ``min_mesh`` maximum, when
        it has more meshes than models, or when smart placement fails. None when every split is.
        """
        need = max(llm.min_mesh for llm in llms)
        best: tuple[float, list[Mesh]] | None = None
        for split in splits:
            if max(split) < need or len(split) > len(llms):
                continue
            meshes = self.smart_placement(llms, [Mesh(n) for n in split], pool)
            if meshes is None:
                continue
            total_rate = sum(x.rate for x in llms) or 1.0
            score = sum(self.mesh_throughput(m, pool) * sum(x.rate for x, _ in m.models) for m in meshes) / total_rate
            if best is None or score > best[0]:
                best = (score, meshes)
        return None if best is None else best[1]
