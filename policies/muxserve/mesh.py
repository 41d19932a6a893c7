"""MuxServe's own placer, as WarmServe's artifact ran it: one engine per LLM on one GPU mesh.

Sources (read at ``hao-ai-lab/MuxServe@2249cfa``, ``muxserve/muxsched/placement.py``; and the
WarmServe artifact ``LLMServe/WarmServe@a6012151``, ``prewarm_manager.py``):

1. **Mesh splits.** A node is cut into meshes of 1/2/4/8 GPUs from a fixed list
   (``Cluster.generate_candidate_clusters``); a split with more meshes than models is skipped
   (``PlacementOptimizer.optimize``), and so is one whose largest mesh is smaller than the largest
   minimum mesh a model needs. The artifact launches every engine on one node and raises above 8
   GPUs (``PrewarmManager.__init__``: ``if cur_device_pos > 8: raise``), so the placer uses the
   first ``max_gpus`` GPUs of node 0 only.
2. **Decode MPS percentage per (model, mesh size)** (``CostEstimator.estimate_mps``): the smallest
   profiled percentage (10..90) whose estimated throughput meets the model's planned rate (its
   expected mean rate, rescaled so that all models add up to ``plan_rps``), else the
   one with the highest throughput. The batch that meets the rate is the model's ``max_num_seqs``
   (``LLM.set_candidate_mesh_size`` -> ``query_candidate_tpt`` -> ``dump_to_yaml``).
3. **Throughput estimate** (``CostEstimator.estimate_throughput``): ``tpt(bs) = bs / (t_decode(bs) x
   avg_output_len + t_prefill(bs))`` with ShareGPT lengths 161/337 (``PlacementOptimizer``), a
   per-sequence scheduling overhead on decode (``get_latency``), and "meets the rate" when
   ``tpt + min(0.5, 0.1 tpt) > rate``. MuxServe reads ``t_decode``/``t_prefill`` from its profiled
   ``llama.json``; here they are the run's cost model at TP = mesh size, times the MPS slowdown
   table of :mod:`warmsim.policies.muxserve.slowdown` (the same table the simulator charges).
4. **Greedy mesh choice** (``PlacementOptimizer.smart_placement``): LLMs by ``rate x rate_scale``
   descending; each goes to the mesh where the estimated mesh throughput rises most (ties: the
   smaller mesh), meshes kept sorted by (amortised compute tag, free memory) descending; a mesh
   refuses a model whose weights do not fit or whose decode percentage overflows what is left by
   more than ``overload_threshold_pct`` (``MeshGroup.can_place``). The split with the highest total
   estimated throughput wins (strictly higher; the first in list order on ties).
5. **What the artifact gives each engine** (``PrewarmManager.__init__``, ``is_muxserve`` branch):
   TP = mesh size; MPS share ``max(prefill%, decode%) / sum over the mesh`` (prefill % from
   ``dump_to_yaml``'s ``prefill_mps_dict``); KV bytes per GPU = the unit's memory left after weights
   and ``reserve_bytes_per_model`` per model (``YamlBuilder.update_utilization``), split between the
   mesh's models by KV block size; ``max_num_seqs`` from step 2.

Simplifications (docs/baselines.md): memory feasibility is the simulator's own pool, not
MuxServe's ``0.9 x (1 - 0.4) x 80 GB`` bookkeeping; the batch search is over whole batches; the mesh
throughput loop of ``estimate_mesh_throughput`` grows each lagging model's batch one step at a time
up to its KV limit, as MuxServe's does, but from the cost model instead of the profile. The artifact
gives every engine of a unit the *last* model's block fraction (``block_size`` left over from a
loop); that can add up to more than the unit's memory, which the simulator refuses, so each engine
gets its own model's fraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from warmsim.policies.types import Activate, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_TOKENS, Knob, bounded, count, nonneg, positive
from warmsim.sim.models import CHUNK_BYTES, align_up

if TYPE_CHECKING:
    from warmsim.policies.base import SharingModel

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


class MeshCosts(Protocol):
    """Step times of a model at a given TP degree, alone on whole GPUs (the builder adapts the run's
    cost model)."""

    def prefill_s(self, model: str, tp: int, tokens: int, seqs: int) -> float:
        """One prefill step over ``seqs`` sequences totalling ``tokens`` tokens."""

    def decode_s(self, model: str, tp: int, batch: int, ctx_tokens: int) -> float:
        """One decode step of ``batch`` sequences holding ``ctx_tokens`` tokens of context."""


def _by_size(table: Sequence[Sequence[float]], params_b: float) -> float:
    """The value of the first ``[max_params_b, value]`` row whose bound is >= ``params_b``."""
    for bound, value in table:
        if params_b <= bound:
            return float(value)
    return float(table[-1][1])


@dataclass
class _LLM:
    name: str
    rate: float
    weight: int
    kvpt: int  # KV bytes per token, whole model
    params_b: float
    prefill_pct: float
    sched_s: float
    min_mesh: int = 0
    # mesh size -> (decode %, batch meeting the rate, throughput, satisfied)
    cand: dict[int, tuple[int, int, float, bool]] = field(default_factory=dict)

    @property
    def rate_scale(self) -> float:
        return self.params_b / 7.0


@dataclass
class _Mesh:
    ngpus: int
    models: list[tuple[_LLM, int]] = field(default_factory=list)
    tag: float = 0.0
    tpt: float = 0.0


@dataclass(frozen=True)
@bounded(kv_bytes_per_token=Knob("mapping", null=True, help="model -> KV bytes per token; null = the model's"),
         decode_mps_levels=Knob("floats", 0, 100, lo_open=True, help="decode MPS percentages tried"),
         prefill_mps=Knob("pairs", 0, help="(model size bound in B params, prefill MPS percent) rows"),
         sched_overhead_s=Knob("pairs", 0, help="(model size bound in B params, scheduling seconds) rows"),
         max_gpus=count("GPUs of node 0 the engines may use (the artifact raises above 8)", 8),
         avg_prompt_len=count("prompt length of MuxServe's estimator", MAX_TOKENS),
         avg_output_len=count("output length of MuxServe's estimator", MAX_TOKENS),
         max_batch=count("largest batch of MuxServe's estimator"),
         reserve_bytes_per_model=nonneg("bytes each model keeps beyond weights and KV", 1e15),
         overload_threshold_pct=nonneg("percent a mesh's decode MPS may exceed 100 by", 1000),
         slack_abs=nonneg("absolute slack of the estimator's rate check", 1e6),
         slack_rel=nonneg("relative slack of the estimator's rate check", 100),
         min_kv_tokens=count("KV tokens every engine must hold", MAX_TOKENS, lo=0),
         plan_rps=positive("total req/s the plan is made for; null = the run's own mean rate", 1e7, null=True),
         plan_shares=Knob("choice", choices=("recipe", "run"), help="how plan_rps splits over the models"),
         rate_shares=Knob("mapping", null=True, help="the workload recipe's share per model (the builder's)"))
class MuxServeMeshPlacer:
    """``InitialPlacer``: MuxServe's one-mesh-per-LLM placement on one node (module docstring).

    ``costs``, ``sharing`` and ``kv_bytes_per_token`` come from the builder (the run's cost model,
    the bundle's MPS slowdown table, each model's KV bytes per token).
    """

    costs: MeshCosts | None = None
    sharing: SharingModel | None = None
    kv_bytes_per_token: Mapping[str, int] | None = None
    #: GPUs of node 0 the engines may use: the artifact raises above 8 (``prewarm_manager.py``).
    max_gpus: int = 8
    #: Mean prompt / output lengths of the estimator: ShareGPT's, hard-coded in MuxServe's
    #: ``PlacementOptimizer.__init__`` (161 / 337).
    avg_prompt_len: int = 161
    avg_output_len: int = 337
    #: Decode MPS percentages tried, ascending (``estimate_mps`` skips > 90 and the prefill one).
    decode_mps_levels: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
    #: Prefill MPS % by model size, rows ``[max_params_b, percent]``: ``dump_to_yaml``'s
    #: ``prefill_mps_dict`` (7B 80, 13B 90, 30B and 65B 100).
    prefill_mps: tuple[tuple[float, float], ...] = ((8.0, 80.0), (14.0, 90.0), (1e9, 100.0))
    #: Decode scheduling overhead per sequence (s) by model size, rows ``[max_params_b, s]``:
    #: ``CostEstimator.get_latency`` (7B 1e-4, 13B 8e-5, larger 7e-5).
    sched_overhead_s: tuple[tuple[float, float], ...] = ((8.0, 1e-4), (14.0, 8e-5), (1e9, 7e-5))
    #: Largest batch the estimator considers (MuxServe's profile and default ``max_num_seqs``: 256).
    max_batch: int = 256
    #: Memory held back per model per GPU: 2 x 0.8 GB processes + 6 GB activations
    #: (``YamlBuilder.update_utilization``).
    reserve_bytes_per_model: int = 7_600_000_000
    #: How far a mesh's decode percentages may exceed 100 (``MeshGroup.overload_threshold``).
    overload_threshold_pct: float = 20.0
    #: "Meets the rate" slack: ``tpt + min(slack_abs, slack_rel x tpt) > rate`` (``estimate_throughput``).
    slack_abs: float = 0.5
    slack_rel: float = 0.1
    #: KV tokens every engine must hold at least [I]: one sequence at the max model length (2048).
    min_kv_tokens: int = 2048
    #: Total rate (req/s) the plan is made for [ours], so that one plan serves every swept rate (the
    #: artifact loads fixed placement YAMLs, ``PrewarmManager.__init__``; the rate they were made for
    #: is not released). ``None``: plan at each run's own mean rates.
    plan_rps: float | None = 15.0
    #: How ``plan_rps`` is split between the models: ``"recipe"``, by the workload recipe's shares
    #: (``rate_shares``) when it states them, else as ``"run"``: the run's expected rates rescaled to
    #: add up to ``plan_rps`` (their proportions vary a little with the sampled requests, and
    #: MuxServe's choice of meshes can flip with them).
    plan_shares: str = "recipe"
    #: The workload recipe's share of each model (from the builder's context; None: not stated).
    rate_shares: Mapping[str, float] | None = None

    def with_context(self, ctx) -> MuxServeMeshPlacer:
        """This placer estimating from the run's costs and sharing model (:class:`RunContext`)."""
        return replace(self, costs=ctx, sharing=ctx.sharing, rate_shares=getattr(ctx, "rate_shares", None))

    # -- the InitialPlacer protocol -----------------------------------------------------------------

    def place(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[Activate]:
        """One engine per model, ready at time 0, on its mesh of node 0."""
        return [a for a, _ in self.plan(snap, expected_rate)]

    def plan(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[tuple[Activate, dict]]:
        """The engines as (Activate, details) pairs; details hold the mesh, the decode and prefill
        MPS percentages and the throughput estimate (for reports and tests)."""
        self._estimator()
        gpus = [g for g in snap.node_gpus(0)][: self.max_gpus]
        ngpus = len(gpus)
        if ngpus not in SPLITS:
            raise UserError(f"muxserve: MuxServe cuts a node of 1, 2, 4, 6 or 8 GPUs into meshes; this "
                            f"one offers {ngpus} (cluster.gpus_per_node, system.initial.max_gpus)")
        pool = min(snap.gpu(g).free_bytes for g in gpus)
        llms = self._llms(snap, expected_rate)
        for llm in llms:
            self._candidates(llm, pool, ngpus)
        need = max(llm.min_mesh for llm in llms)
        best: tuple[float, list[_Mesh]] | None = None
        for split in SPLITS[ngpus]:
            if max(split) < need or len(split) > len(llms):
                continue
            meshes = self._smart(llms, [_Mesh(n) for n in split], pool)
            if meshes is None:
                continue
            total_rate = sum(x.rate for x in llms) or 1.0
            score = sum(self._mesh_tpt(m, pool) * sum(x.rate for x, _ in m.models) for m in meshes) / total_rate
            if best is None or score > best[0]:
                best = (score, meshes)
        if best is None:
            raise UserError(f"muxserve: no split of {ngpus} GPUs into meshes holds every model "
                            f"({', '.join(x.name for x in llms)}) with {self.reserve_bytes_per_model / 1e9:.1f} GB "
                            f"reserved per model and KV for {self.min_kv_tokens} tokens")
        return self._engines(best[1], gpus, pool)

    # -- estimator ----------------------------------------------------------------------------------

    def planned_rates(self, models, expected_rate: Mapping[str, float]) -> dict[str, float]:
        """The per-model rates the estimator plans for: ``expected_rate`` (0 for a model it lacks) when
        ``plan_rps`` is None; else ``plan_rps`` split by the recipe's shares (``plan_shares: recipe``
        and shares known for these models) or by ``expected_rate``'s proportions (rescaled to add up
        to ``plan_rps``; left as they are when all are 0)."""
        models = list(models)
        shares = self.rate_shares
        if self.plan_rps is not None and self.plan_shares == "recipe" and shares and all(m in shares for m in models):
            total = sum(float(shares[m]) for m in models)
            if total > 0:
                return {m: self.plan_rps * float(shares[m]) / total for m in models}
        rates = {}
        for name in models:
            rate = float(expected_rate.get(name, 0.0))
            if not (rate >= 0 and math.isfinite(rate)):
                raise UserError(f"muxserve: expected rate of {name} must be a finite number >= 0, got {rate}")
            rates[name] = rate
        total = sum(rates.values())
        if self.plan_rps is None or total <= 0:
            return rates
        return {name: r * (self.plan_rps / total) for name, r in rates.items()}

    def _llms(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[_LLM]:
        kv = self.kv_bytes_per_token or {}
        rates = self.planned_rates(sorted(snap.models), expected_rate)
        out = []
        for name in sorted(snap.models):
            mv = snap.models[name]
            rate = rates[name]
            kvpt = int(kv.get(name, mv.kv_bytes_per_token))
            if kvpt <= 0:
                raise UserError(f"muxserve: KV bytes per token of model '{name}' unknown")
            params_b = mv.weight_bytes / 2 / 1e9
            out.append(_LLM(name, rate, mv.weight_bytes, kvpt, params_b, _by_size(self.prefill_mps, params_b),
                            _by_size(self.sched_overhead_s, params_b)))
        # PlacementOptimizer.optimize / smart_placement order: rate x rate_scale, then rate_scale, descending
        out.sort(key=lambda x: (x.rate * x.rate_scale, x.rate_scale, x.name), reverse=True)
        return out

    def _fits(self, weights: Sequence[int], kvpts: Sequence[int], g: int, pool: int) -> bool:
        """The mesh's models fit: each GPU holds every shard, the per-model reserve and min KV."""
        per_gpu = sum(align_up(-(-w // g)) for w in weights) + len(weights) * self.reserve_bytes_per_model
        per_gpu += sum(align_up(self.min_kv_tokens * -(-k // g)) for k in kvpts)
        return per_gpu <= pool

    def _estimator(self) -> tuple[MeshCosts, SharingModel]:
        """The run's costs and MPS table, which the builder supplies (``with_context``)."""
        if self.costs is None or self.sharing is None:
            raise UserError("muxserve: the mesh placer needs the run's costs and MPS table (built by the builder)")
        return self.costs, self.sharing

    def _times(self, llm: _LLM, g: int, decode_pct: float, bs: int) -> tuple[float, float]:
        """(t_decode, t_prefill) of a batch of ``bs`` on a mesh of ``g`` GPUs (``get_latency``)."""
        costs, sharing = self._estimator()
        p, o = self.avg_prompt_len, self.avg_output_len
        ctx = int(bs * (p + o / 2))
        t_dec = costs.decode_s(llm.name, g, bs, ctx) * sharing.factor("decode", decode_pct / 100, bs, 0)
        t_dec += llm.sched_s * bs
        t_pre = costs.prefill_s(llm.name, g, bs * p, bs) * \
            sharing.factor("prefill", min(llm.prefill_pct, 100.0) / 100, bs, 0, tokens=bs * p)
        return t_dec, t_pre

    def _tpt(self, llm: _LLM, g: int, decode_pct: float, bs: int, prefill_extra: float = 0.0) -> float:
        t_dec, t_pre = self._times(llm, g, decode_pct, bs)
        return bs / (t_dec * self.avg_output_len + t_pre + prefill_extra)

    def _max_bs(self, llm: _LLM, cache_bytes: float) -> int:
        per_seq = llm.kvpt * (self.avg_prompt_len + self.avg_output_len)
        return int(max(1, min(cache_bytes // per_seq, self.max_batch)))

    def _satisfies(self, tpt: float, rate: float) -> bool:
        return tpt + min(self.slack_abs, self.slack_rel * tpt) > rate

    def _estimate(self, llm: _LLM, g: int, decode_pct: float, cache_bytes: float) -> tuple[bool, float, int]:
        """``estimate_throughput``: the smallest batch meeting the rate (else the KV-limited one)."""
        hi = self._max_bs(llm, cache_bytes)
        if self._tpt(llm, g, decode_pct, hi) < llm.rate:
            bs = hi
        else:
            lo = 1
            while lo < hi:
                mid = (lo + hi) // 2
                if self._tpt(llm, g, decode_pct, mid) >= llm.rate:
                    hi = mid
                else:
                    lo = mid + 1
            bs = lo
        tpt = self._tpt(llm, g, decode_pct, bs)
        ok = self._satisfies(tpt, llm.rate)
        return ok, (llm.rate if ok else tpt), bs

    def _candidates(self, llm: _LLM, pool: int, ngpus: int) -> None:
        """``set_candidate_mesh_size`` / ``estimate_mps``: per mesh size, the decode % and batch."""
        for g in (1, 2, 4, 8):
            if g > ngpus or not self._fits([llm.weight], [llm.kvpt], g, pool):
                continue
            cache = g * pool - llm.weight - g * self.reserve_bytes_per_model
            best = None
            for pct in sorted(self.decode_mps_levels):
                if pct > 90 or pct == llm.prefill_pct:
                    continue
                ok, tpt, bs = self._estimate(llm, g, pct, cache)
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

    def _mesh_cache(self, mesh: _Mesh, llms: Sequence[_LLM], pool: int) -> float:
        """``estimate_kv_cache_size``: the mesh's memory left after weights and reserves."""
        return max(0.0, mesh.ngpus * pool - sum(x.weight for x in llms)
                   - mesh.ngpus * len(llms) * self.reserve_bytes_per_model)

    def _mesh_tpt(self, mesh: _Mesh, pool: int) -> float:
        """``estimate_mesh_throughput``: the rate-weighted mean throughput of the mesh's models,
        growing the batch of the model furthest below its rate one step at a time."""
        if not mesh.models:
            return 0.0
        llms = [x for x, _ in mesh.models]
        pcts = [p for _, p in mesh.models]
        g = mesh.ngpus
        cache = self._mesh_cache(mesh, llms, pool)
        base = sum(x.kvpt * x.rate for x in llms)
        local = [(x.kvpt * x.rate / base * cache) if base > 0 else cache / len(llms) for x in llms]
        bss, max_bss = [], []
        for x, pct, c in zip(llms, pcts, local):
            _, _, bs = self._estimate(x, g, pct, c)
            bss.append(bs)
            max_bss.append(self._max_bs(x, c))
        best = 0.0
        while any(b < m for b, m in zip(bss, max_bss)):
            times = [self._times(x, g, p, b) for x, p, b in zip(llms, pcts, bss)]
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

    def _can_place(self, mesh: _Mesh, llm: _LLM, pct: int, pool: int) -> bool:
        """``MeshGroup.can_place``: memory, and decode % within the overload threshold."""
        llms = [x for x, _ in mesh.models] + [llm]
        if not self._fits([x.weight for x in llms], [x.kvpt for x in llms], mesh.ngpus, pool):
            return False
        remaining = 100.0 - sum(p for _, p in mesh.models)
        return remaining >= pct or remaining + self.overload_threshold_pct >= pct

    def _smart(self, llms: Sequence[_LLM], meshes: list[_Mesh], pool: int) -> list[_Mesh] | None:
        """``smart_placement``: each LLM to the mesh whose estimated throughput rises most."""
        def order(ms: list[_Mesh]) -> list[_Mesh]:
            free = {id(m): m.ngpus * pool - sum(x.weight for x, _ in m.models) for m in ms}
            return sorted(ms, key=lambda m: (m.tag, free[id(m)]), reverse=True)

        meshes = order(meshes)
        for llm in llms:
            best, best_inc = None, -math.inf
            for mesh in meshes:
                cand = llm.cand.get(mesh.ngpus)
                if cand is None or not self._can_place(mesh, llm, cand[0], pool):
                    continue
                trial = _Mesh(mesh.ngpus, mesh.models + [(llm, cand[0])])
                inc = self._mesh_tpt(trial, pool) - mesh.tpt
                if inc > best_inc or (inc == best_inc and best is not None and mesh.ngpus < best.ngpus):
                    best, best_inc = mesh, inc
            if best is None:
                return None
            best.models.append((llm, llm.cand[best.ngpus][0]))
            best.tpt += best_inc
            best.tag -= llm.rate * llm.rate_scale / best.ngpus
            meshes = order(meshes)
        return meshes

    # -- engines ------------------------------------------------------------------------------------

    def _engines(self, meshes: list[_Mesh], gpus: list[int], pool: int) -> list[tuple[Activate, dict]]:
        out = []
        pos = 0
        # largest meshes first, so every mesh starts at a multiple of its size (aligned TP groups)
        for mesh in sorted((m for m in meshes if m.models), key=lambda m: -m.ngpus):
            g = mesh.ngpus
            group = tuple(gpus[pos:pos + g])
            pos += g
            llms = [x for x, _ in mesh.models]
            pcts = {x.name: max(x.prefill_pct, p) for x, p in mesh.models}
            total_pct = sum(pcts.values())
            shards = sum(align_up(-(-x.weight // g)) for x in llms)
            left = pool - shards - len(llms) * self.reserve_bytes_per_model
            kv_sum = sum(-(-x.kvpt // g) for x in llms)
            for x, decode_pct in sorted(mesh.models, key=lambda t: t[0].name):
                kv = int(left * -(-x.kvpt // g) / kv_sum) // CHUNK_BYTES * CHUNK_BYTES
                share = pcts[x.name] / total_pct
                cap = x.cand[g][1]
                act = Activate(model=x.name, gpus=group, source="prewarmed", compute_share=share,
                               kv_bytes_per_gpu=kv, tp=g, max_num_seqs=cap)
                out.append((act, {"mesh": g, "decode_pct": decode_pct, "prefill_pct": x.prefill_pct,
                                  "share": share, "max_num_seqs": cap, "rate": x.rate,
                                  "satisfied": x.cand[g][3]}))
        out.sort(key=lambda t: (t[0].gpus[0], t[0].model))
        return out
