"""``warmsim estimate``: the predicted start-up breakdown and first-request TTFT of one model.

Answers from :func:`warmsim.sim.startup.startup_breakdown` (the simulator's own formulas, one load alone on
an idle node) plus one prefill of the prompt from the cost model.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmsim.calibrate.costmodel import ProfileCostModel
from warmsim.calibrate.profile import external_note
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel
from warmsim.sim.startup import MEMSWITCH, SOURCE_PATHS, StartupBreakdown, startup_breakdown

#: Accepted ``key=value`` arguments: key -> (required, help).
KEYS = {
    "model": (True, "catalog model name"),
    "gpu_profile": (True, "shipped profile name or profile directory"),
    "source": (True, "host_pinned | host_pageable | ssd | remote | prewarmed | peer_nvlink | peer_rdma"),
    "prompt_tokens": (True, "prompt length of the first request"),
    "tp": (False, "tensor-parallel degree (default 1)"),
    "memswitch": (False, "free_malloc | vmm_pool (default free_malloc)"),
    "device_prewarmed": (False, "true | false (default false)"),
    "engine_prewarmed": (False, "true | false (default false)"),
    "cluster": (False, "cluster config the model must fit, as in `warmsim compare` (default: compare's default)"),
}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class EstimateRequest:
    """Parsed arguments of one estimate."""

    model: str
    gpu_profile: str
    source: str
    prompt_tokens: int
    tp: int = 1
    memswitch: str = "free_malloc"
    device_prewarmed: bool = False
    engine_prewarmed: bool = False
    cluster: str | None = None


def _int(key: str, v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise UserError(f"estimate: {key}={v!r} is not an integer") from None
    if n <= 0:
        raise UserError(f"estimate: {key} must be positive, got {n}")
    return n


def parse_args(argv: list[str]) -> EstimateRequest:
    """Parse ``key=value`` arguments; :class:`UserError` naming the key on any problem."""
    vals: dict[str, str] = {}
    for a in argv:
        if "=" not in a:
            raise UserError(f"estimate: expected key=value, got {a!r} (keys: {', '.join(KEYS)})")
        k, v = a.split("=", 1)
        if k not in KEYS:
            raise UserError(f"estimate: unknown key '{k}' (keys: {', '.join(KEYS)})")
        vals[k] = v
    missing = [k for k, (req, _) in KEYS.items() if req and k not in vals]
    if missing:
        raise UserError(f"estimate: missing {', '.join(k + '=' for k in missing)}")
    if vals["source"] not in SOURCE_PATHS:
        raise UserError(f"estimate: source={vals['source']!r} unknown (known: {', '.join(SOURCE_PATHS)})")
    memswitch = vals.get("memswitch", "free_malloc")
    if memswitch not in MEMSWITCH:
        raise UserError(f"estimate: memswitch={memswitch!r} unknown (known: {', '.join(MEMSWITCH)})")
    flags = {}
    for k in ("device_prewarmed", "engine_prewarmed"):
        v = vals.get(k, "false").lower()
        if v not in _BOOLS:
            raise UserError(f"estimate: {k}={vals[k]!r} must be true or false")
        flags[k] = _BOOLS[v]
    return EstimateRequest(model=vals["model"], gpu_profile=vals["gpu_profile"], source=vals["source"],
                           prompt_tokens=_int("prompt_tokens", vals["prompt_tokens"]),
                           tp=_int("tp", vals.get("tp", "1")), memswitch=memswitch, cluster=vals.get("cluster"),
                           **flags)


def usage() -> str:
    """``warmsim estimate --help``."""
    width = max(len(k) for k in KEYS)
    lines = ["usage: warmsim estimate key=value ...", "",
             "Predicted cold-start breakdown and first-request TTFT of one model, from the simulator's own",
             "cost model. The model must fit the cluster as `warmsim compare` requires (TP divides the heads,",
             "a TP group within a node, weights plus one full sequence in a GPU's pool).", "", "keys:"]
    lines += [f"  {k + '=':<{width + 1}}  {'(required) ' if req else ''}{help_}" for k, (req, help_) in KEYS.items()]
    return "\n".join(lines)


def _cluster_and_engine(name: str | None):
    """The cluster and engine `warmsim compare` would use (its default config, or ``cluster=NAME``)."""
    from warmsim.experiments.builder import build_engine, group_choices
    from warmsim.experiments.confpath import compose
    from warmsim.experiments.validate import GROUPS
    from warmsim.sim.cluster import GIB, ClusterSpec

    if name is not None and name not in group_choices("cluster"):
        raise UserError(f"estimate: cluster={name!r} unknown (known: {', '.join(group_choices('cluster'))})")
    overrides = [] if name is None else [f"cluster={name}"]
    cfg = compose(overrides)  # user config directories too (experiments/confpath.py)
    for key in ("gpus_per_node", "gpu_hbm_gib", "memory_fraction"):
        GROUPS["cluster"][key].check(f"cluster.{key}", cfg.cluster[key])
    c = cfg.cluster
    cluster = ClusterSpec(nodes=int(c.nodes), gpus_per_node=int(c.gpus_per_node),
                          gpu_hbm_bytes=int(float(c.gpu_hbm_gib) * GIB), memory_fraction=float(c.memory_fraction),
                          pcie_pinned_bw=0.0, pcie_pageable_bw=0.0, host_mem_bw=0.0, ssd_bw=0.0, nic_bw=0.0,
                          nvlink_bw=0.0)
    return cluster, build_engine(cfg)


def check_request(req: EstimateRequest, model: ServedModel) -> None:
    """The model/cluster checks of `warmsim compare` (:mod:`warmsim.experiments.validate`), and a prompt
    within the model's context."""
    from warmsim.experiments.validate import check_fit, check_tp

    cluster, engine = _cluster_and_engine(req.cluster)
    check_tp(model.shape, req.tp, "estimate: tp", cluster.gpus_per_node)
    check_fit({model.name: model}, cluster, engine, where="estimate")
    if req.prompt_tokens > model.shape.max_model_len:
        raise UserError(f"estimate: prompt_tokens: got {req.prompt_tokens}; allowed: at most {req.model}'s "
                        f"max_model_len {model.shape.max_model_len}")


@dataclass(frozen=True)
class Estimate:
    """The answer: start-up phases, the first prefill, and their total (the first token's TTFT)."""

    request: EstimateRequest
    model: ServedModel
    profile: str
    measured: bool
    startup: StartupBreakdown
    prefill_s: float
    #: :func:`~warmsim.calibrate.profile.external_note` of the profile (None: measured by the harness or not at all)
    provenance: str | None = None

    @property
    def ttft_s(self) -> float:
        return self.startup.total_s + self.prefill_s

    def parts(self) -> list[tuple[str, float]]:
        """(label, seconds) of every phase, in order; they sum to :attr:`ttft_s`."""
        s = self.startup
        mem = "memory (VMM mapping not hidden)" if self.request.memswitch == "vmm_pool" else "memory (cudaMalloc)"
        return [("process + CUDA context", s.process_s), (mem, s.memory_s), ("weight transfer", s.transfer_s),
                ("load overhead", s.load_overhead_s), ("engine init", s.engine_init_s),
                (f"prefill ({self.request.prompt_tokens} tokens)", self.prefill_s)]


def estimate(req: EstimateRequest, cost: ProfileCostModel | None = None) -> Estimate:
    """Compute the estimate for ``req`` (loading its profile unless ``cost`` is given)."""
    from warmsim.experiments.confpath import model_shape
    model = ServedModel(req.model, model_shape(req.model), req.tp)  # a user model/NAME.yaml too
    check_request(req, model)
    cost = cost or ProfileCostModel.load(req.gpu_profile)
    bd = startup_breakdown(cost, model, req.source, device_prewarmed=req.device_prewarmed,
                           engine_prewarmed=req.engine_prewarmed, memswitch=req.memswitch)
    return Estimate(req, model, cost.name, cost.measured, bd, cost.prefill_s(model, req.prompt_tokens, 1),
                    external_note(cost.fitted.meta))


def format_estimate(e: Estimate) -> str:
    """Human-readable table of the breakdown and its total."""
    r = e.request
    kind = e.provenance or ("measured" if e.measured else "NOT measured (analytic)")
    lines = [f"model {r.model} tp={r.tp} ({e.model.shard_bytes / 1e9:.2f} GB per GPU), source {r.source}, "
             f"memswitch {r.memswitch}, device_prewarmed={str(r.device_prewarmed).lower()}, "
             f"engine_prewarmed={str(r.engine_prewarmed).lower()}",
             f"profile {e.profile}: {kind}"]
    width = max(len(label) for label, _ in e.parts())
    for label, sec in e.parts():
        lines.append(f"  {label:<{width}}  {sec:10.4f} s")
    lines.append(f"  {'TTFT of first request':<{width}}  {e.ttft_s:10.4f} s")
    return "\n".join(lines)
