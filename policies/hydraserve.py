"""HydraServe's cold-start planner (arXiv 2502.15524; ``LLMServe/hydraserve``
``scripts/kubernetes/vllm/src/algs.py`` ``ours``): how many pipeline stages a cold start gets and on
which servers, from each server's share of its NIC.

The pipeline itself (stages on several servers, their fetch, the per-step hop, consolidation) is the
simulator's ``pipeline`` mechanism (``sim/mechanisms/pipeline.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from warmsim.policies.types import LOADING, STARTING, Activate, Snapshot
from warmsim.sim.cost import check_source
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import Knob, bounded, count, nonneg, positive, text


def _interp(table: Sequence[Sequence[float]], x: float) -> float:
    """Piecewise-linear in ``x`` through the (x, y) points of ``table``, flat beyond its ends."""
    pts = sorted((float(a), float(b)) for a, b in table)
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


@dataclass(frozen=True)
@bounded(source=text("where the weights come from (a storage tier, sim/sources/)"),
         max_pp=count("largest pipeline (MAX_PP_SIZE)", 64),
         ttft_slo_s=Knob("pairs", 0, help="(weight GB, TTFT SLO seconds) points"),
         tpot_slo_s=positive("TPOT SLO in seconds", 3600),
         post_fetch_ms=nonneg("the planner's allowance after the pull, ms", 1e7),
         prefill_ms=nonneg("the planner's prefill time, ms", 1e7),
         hop_ms=nonneg("the planner's extra TPOT per extra stage, ms", 1e7))
class HydraServeActivator:
    """HydraServe's ``ours``: the smallest pipeline whose predicted cold TTFT meets the TTFT SLO.

    For one new instance (HydraServe asks for up to four at once; warmsim's activator is asked per
    instance, ``required_pp_size`` = 1):

    - each node's NIC share: ``nic / (1 + pulls on the node)`` in Gbps, the pulls being the instances
      starting or loading there (``resource_manager.py`` ``NetManager``: concurrent pulls share a NIC
      equally);
    - for ``pp`` = 1, 2, ... ``max_pp`` (nodes with ``tp`` free GPUs permitting) and the first stage
      alone holding memory for the whole model (all-card ``a`` = 1, the code's first candidate):
      ``rate = pp - a + a / pp``; predicted TPOT ``tpot_1 x rate + hop_ms x (pp - 1)`` must be at most
      the TPOT SLO (``tpot_1``: one decode step of the model at batch 1 from the cost model); predicted
      TTFT ``size_GB / pp / band_Gbps x 8000 + prefill_ms x rate + post_fetch_ms`` must be below the
      TTFT SLO, ``band`` the smallest share among the ``pp`` nodes with the largest shares;
    - the first ``pp`` that fits wins; none: ``pp`` = 1 (the code's fallback).

    The stages go to the nodes with the largest NIC shares (ties: lowest node id), the first stage on
    the largest; within a node the lowest-numbered free GPUs. ``None`` when no node has ``tp`` free GPUs.
    """

    #: Where the weights come from: HydraServe pulls checkpoints from remote storage servers.
    source: str = "remote"
    #: Largest pipeline (``MAX_PP_SIZE`` default 4, ``algs.py``).
    max_pp: int = 4
    #: TTFT SLO by model size: (weight GB, seconds) points, flat beyond the ends. HydraServe's chatbot
    #: SLOs (``ModelInfo.py``, MODEL_SET 3): 13 GB (7B) 7.5 s, 25 GB (13B) 12 s; larger models take 12 s [ours].
    ttft_slo_s: tuple = ((13.0, 7.5), (25.0, 12.0))
    #: TPOT SLO, seconds (chatbot: ``chat_tpot`` 200 ms).
    tpot_slo_s: float = 0.2
    #: The planner's allowance for everything after the pull ("model loading, initialization, etc."), ms.
    post_fetch_ms: float = 2000.0
    #: The planner's prefill time, ms (``prefill_time = 2`` once TPOT is profiled).
    prefill_ms: float = 2.0
    #: The planner's extra TPOT per extra stage, ms.
    hop_ms: float = 1.0
    _tpot1: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_source(self.source, "HydraServeActivator.source")
        if self.max_pp < 1:
            raise UserError(f"HydraServeActivator.max_pp must be >= 1, got {self.max_pp}")
        if not self.ttft_slo_s or any(len(p) != 2 for p in self.ttft_slo_s):
            raise UserError(f"HydraServeActivator.ttft_slo_s must be a list of [GB, seconds] points, got {self.ttft_slo_s}")

    def with_context(self, ctx) -> HydraServeActivator:
        """Profiled TPOT at batch 1 of every served model (HydraServe profiles it from its runs)."""
        tp = {m: ctx.decode_s(m, s.tp, 1, 0) for m, s in ctx.models.items()}
        out = HydraServeActivator(self.source, self.max_pp, tuple(map(tuple, self.ttft_slo_s)), self.tpot_slo_s,
                                  self.post_fetch_ms, self.prefill_ms, self.hop_ms)
        out._tpot1.update(tp)
        return out

    def nic_shares(self, snap: Snapshot) -> list[float]:
        """Each node's share of its NIC for one more pull, Gbps."""
        gbps = snap.link_bandwidth.get("nic", 0.0) * 8 / 1e9
        pulls = [0] * snap.n_nodes
        for inst in snap.instances:
            if inst.state in (STARTING, LOADING):
                for n in {snap.gpu(g).node for g in inst.gpus}:
                    pulls[n] += 1
        return [gbps / (1 + p) for p in pulls]

    def plan_pp(self, model: str, size_gb: float, bands: list[float]) -> int:
        """The planner's pipeline size given the NIC shares of the nodes that could take a stage."""
        slo_ms = 1000.0 * _interp(self.ttft_slo_s, size_gb)
        ranked = sorted(bands, reverse=True)
        tpot1_ms = 1000.0 * self._tpot1.get(model, 0.0)
        for pp in range(1, self.max_pp + 1):
            if len(ranked) < pp:
                break
            a = 1
            rate = pp - a + a / pp
            if tpot1_ms * rate + self.hop_ms * (pp - 1) > 1000.0 * self.tpot_slo_s:
                continue
            band = ranked[pp - 1]
            if band <= 0:
                continue
            ttft = size_gb / pp / band * 8 * 1000.0 + self.prefill_ms * rate + self.post_fetch_ms
            if ttft < slo_ms:
                return pp
        return 1

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        mv = snap.models[model]
        shares = self.nic_shares(snap)
        free = snap.free_gpus_by_node()
        nodes = sorted((n for n in range(snap.n_nodes) if len(free[n]) >= mv.tp), key=lambda n: (-shares[n], n))
        if not nodes:
            return None
        pp = self.plan_pp(model, mv.weight_bytes / 1e9, [shares[n] for n in nodes])
        groups = [tuple(free[n][:mv.tp]) for n in nodes[:pp]]
        return Activate(model, groups[0], source=self.source, stages=tuple(groups[1:]))
