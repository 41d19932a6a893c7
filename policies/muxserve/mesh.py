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

The estimator of steps 2-4 (MuxServe's ``CostEstimator`` and ``PlacementOptimizer``) is
:mod:`warmsim.policies.muxserve.estimator`; this module is the ``InitialPlacer`` that plans with it
(:class:`MuxServeMeshPlacer`) and step 5 (:func:`engines`).

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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from warmsim.policies.muxserve.estimator import SPLITS, Mesh, MeshCosts, MeshEstimator, llm_list
from warmsim.policies.types import Activate, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_TOKENS, Knob, bounded, count, nonneg, positive
from warmsim.sim.models import CHUNK_BYTES, align_up

if TYPE_CHECKING:
    from warmsim.policies.base import SharingModel

__all__ = ["MuxServeMeshPlacer", "engines", "SPLITS", "MeshCosts"]


def engines(meshes: list[Mesh], gpus: list[int], pool: int, reserve_bytes_per_model: int) -> list[tuple[Activate, dict]]:
    """What the artifact gives each engine of the placed meshes (``PrewarmManager.__init__``,
    ``is_muxserve`` branch), as (Activate, details) pairs sorted by first GPU, then model.

    Meshes go on ``gpus`` largest first, so each starts at a multiple of its size; empty meshes get
    none. Each model of a mesh of ``g`` GPUs gets TP ``g``, source ``"prewarmed"``, compute share
    ``max(prefill %, decode %)`` over the mesh's sum, ``max_num_seqs`` = its candidate batch for
    ``g``, and KV bytes per GPU = ``pool`` less the shards (chunk-aligned) and
    ``reserve_bytes_per_model`` per model, split by ceil(kvpt / g), rounded down to whole chunks.
    Details: mesh, decode_pct, prefill_pct, share, max_num_seqs, rate, satisfied.
    """
    out = []
    pos = 0
    for mesh in sorted((m for m in meshes if m.models), key=lambda m: -m.ngpus):
        g = mesh.ngpus
        group = tuple(gpus[pos:pos + g])
        pos += g
        llms = [x for x, _ in mesh.models]
        pcts = {x.name: max(x.prefill_pct, p) for x, p in mesh.models}
        total_pct = sum(pcts.values())
        shards = sum(align_up(-(-x.weight // g)) for x in llms)
        left = pool - shards - len(llms) * reserve_bytes_per_model
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

    def estimator(self) -> MeshEstimator:
        """MuxServe's estimator (:mod:`warmsim.policies.muxserve.estimator`) with this placer's
        settings and the run's costs and MPS table; UserError when the builder has not supplied them
        (``with_context``)."""
        if self.costs is None or self.sharing is None:
            raise UserError("muxserve: the mesh placer needs the run's costs and MPS table (built by the builder)")
        return MeshEstimator(costs=self.costs, sharing=self.sharing, avg_prompt_len=self.avg_prompt_len,
                             avg_output_len=self.avg_output_len, decode_mps_levels=self.decode_mps_levels,
                             max_batch=self.max_batch, reserve_bytes_per_model=self.reserve_bytes_per_model,
                             overload_threshold_pct=self.overload_threshold_pct, slack_abs=self.slack_abs,
                             slack_rel=self.slack_rel, min_kv_tokens=self.min_kv_tokens)

    # -- the InitialPlacer protocol -----------------------------------------------------------------

    def place(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[Activate]:
        """One engine per model, ready at time 0, on its mesh of node 0."""
        return [a for a, _ in self.plan(snap, expected_rate)]

    def plan(self, snap: Snapshot, expected_rate: Mapping[str, float]) -> list[tuple[Activate, dict]]:
        """The engines as (Activate, details) pairs (:func:`engines`); details hold the mesh, the decode
        and prefill MPS percentages and the throughput estimate (for reports and tests).

        Node 0's first ``max_gpus`` GPUs, each offering the least free memory among them; the models
        at :meth:`planned_rates`, each with its candidate meshes; the best of MuxServe's splits
        (:meth:`MeshEstimator.optimize`). UserError when the GPU count has no splits, a model fits no
        mesh, or no split holds every model.
        """
        est = self.estimator()
        gpus = [g for g in snap.node_gpus(0)][: self.max_gpus]
        ngpus = len(gpus)
        if ngpus not in SPLITS:
            raise UserError(f"muxserve: MuxServe cuts a node of 1, 2, 4, 6 or 8 GPUs into meshes; this "
                            f"one offers {ngpus} (cluster.gpus_per_node, system.initial.max_gpus)")
        pool = min(snap.gpu(g).free_bytes for g in gpus)
        names = sorted(snap.models)
        llms = llm_list(snap.models, self.planned_rates(names, expected_rate), self.kv_bytes_per_token or {},
                        self.prefill_mps, self.sched_overhead_s)
        for llm in llms:
            est.set_candidates(llm, pool, ngpus)
        meshes = est.optimize(llms, SPLITS[ngpus], pool)
        if meshes is None:
            raise UserError(f"muxserve: no split of {ngpus} GPUs into meshes holds every model "
                            f"({', '.join(x.name for x in llms)}) with {self.reserve_bytes_per_model / 1e9:.1f} GB "
                            f"reserved per model and KV for {self.min_kv_tokens} tokens")
        return engines(meshes, gpus, pool, self.reserve_bytes_per_model)

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
