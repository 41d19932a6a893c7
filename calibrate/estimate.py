"""``warmsim estimate``: the predicted start-up stages and first-request TTFT of one model.

Answers from :func:`warmsim.sim.startup.startup_breakdown` (the simulator's own formulas, one load alone
on an idle node, over the links of the chosen cluster exactly as the simulator builds them) plus one
prefill of the prompt from the cost model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from warmsim.sim.cost import CostModel
from warmsim.sim.costprofile.profile import external_note
from warmsim.sim.errors import UserError
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.sim.models import ServedModel
from warmsim.sim.sources import SOURCES
from warmsim.sim.startup import StartPath, StartupBreakdown, startup_breakdown

#: The start-path flags an estimate takes, as ``estimate`` keys: key -> StartPath field.
FLAG_KEYS = {"device_prewarmed": "device_prewarm", "engine_prewarmed": "engine_prewarm",
             "comm_prewarmed": "comm_prewarm", "profile_run": "profile_run", "kv_prewarm": "kv_prewarm",
             "overlap_load": "overlap_load", "prefetch": "prefetch"}
_FLAG_HELP = {  # from sim/startup.py's StartPath
    "device_prewarm": "worker processes with a CUDA context already exist",
    "engine_prewarm": "a pooled serving-engine process has done its imports",
    "comm_prewarm": "a prewarmed replica brings its TP communicator",
    "profile_run": "the engine runs its KV profiling forward",
    "kv_prewarm": "a VMM pool maps only the KV blocks the first step needs",
    "overlap_load": "the weight load runs while the engine prepares",
    "prefetch": "the weights move from the start, beside process start, engine imports and preparation",
}
#: Accepted ``key=value`` arguments: key -> (required, help). ``cluster.KEY=V`` and ``engine.KEY=V``
#: are accepted too, as in ``warmsim compare``.
KEYS = {
    "model": (True, "catalog model name, or one of your own (model/NAME.yaml in a config directory)"),
    "source": (True, " | ".join(SOURCES)),
    "gpu_profile": (False, "shipped profile name or profile directory (default: the cost profile of "
                           "`warmsim compare`'s config)"),
    "prompt_tokens": (False, "prompt length of the first request (default 1024)"),
    "tp": (False, "tensor-parallel degree (default 1)"),
    "system": (False, "take the start path and memory switch from this system config (e.g. warmserve); "
                      "the keys below override it"),
    "memswitch": (False, " | ".join(MEMSWITCHES) + " (default free_malloc)"),
    **{k: (False, f"true | false: {_FLAG_HELP[f]} (default {str(getattr(StartPath(), f)).lower()})")
       for k, f in FLAG_KEYS.items()},
    "ready_poll_s": (False, "the router polls a starting engine this often, seconds (default 0)"),
    "cluster": (False, "cluster config the model must fit and whose links the load crosses, as in "
                       "`warmsim compare` (default: compare's default)"),
}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_PASSED_GROUPS = ("cluster.", "engine.")


@dataclass(frozen=True)
class EstimateRequest:
    """Parsed arguments of one estimate (``None``: the config's or the system's value)."""

    model: str
    gpu_profile: str | None
    source: str
    prompt_tokens: int = 1024
    tp: int = 1
    memswitch: str | None = None
    device_prewarmed: bool | None = None
    engine_prewarmed: bool | None = None
    comm_prewarmed: bool | None = None
    profile_run: bool | None = None
    kv_prewarm: bool | None = None
    overlap_load: bool | None = None
    prefetch: bool | None = None
    ready_poll_s: float | None = None
    system: str | None = None
    cluster: str | None = None
    overrides: tuple[str, ...] = ()  # cluster.KEY=V / engine.KEY=V


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
    overrides = []
    for a in argv:
        if "=" not in a:
            raise UserError(f"estimate: expected key=value, got {a!r} (keys: {', '.join(KEYS)}, cluster.KEY, engine.KEY)")
        k, v = a.split("=", 1)
        if k.startswith(_PASSED_GROUPS):
            overrides.append(a)
            continue
        if k not in KEYS:
            raise UserError(f"estimate: unknown key '{k}' (keys: {', '.join(KEYS)}, cluster.KEY, engine.KEY)")
        vals[k] = v
    missing = [k for k, (req, _) in KEYS.items() if req and k not in vals]
    if missing:
        raise UserError(f"estimate: missing {', '.join(k + '=' for k in missing)}")
    if vals["source"] not in SOURCES:
        raise UserError(f"estimate: source={vals['source']!r} unknown (known: {', '.join(SOURCES)})")
    memswitch = vals.get("memswitch")
    if memswitch is not None and memswitch not in MEMSWITCHES:
        raise UserError(f"estimate: memswitch={memswitch!r} unknown (known: {', '.join(MEMSWITCHES)})")
    flags: dict = {}
    for k in FLAG_KEYS:
        if k in vals:
            v = vals[k].lower()
            if v not in _BOOLS:
                raise UserError(f"estimate: {k}={vals[k]!r} must be true or false")
            flags[k] = _BOOLS[v]
    if "ready_poll_s" in vals:
        try:
            poll = float(vals["ready_poll_s"])
        except ValueError:
            poll = -1.0
        if not 0 <= poll <= 60:
            raise UserError(f"estimate: ready_poll_s={vals['ready_poll_s']!r} must be seconds from 0 to 60")
        flags["ready_poll_s"] = poll
    return EstimateRequest(model=vals["model"], gpu_profile=vals.get("gpu_profile"), source=vals["source"],
                           prompt_tokens=_int("prompt_tokens", vals.get("prompt_tokens", "1024")),
                           tp=_int("tp", vals.get("tp", "1")), memswitch=memswitch, system=vals.get("system"),
                           cluster=vals.get("cluster"), overrides=tuple(overrides), **flags)


def usage() -> str:
    """``warmsim estimate --help``."""
    width = max(len(k) for k in KEYS)
    lines = ["usage: warmsim estimate key=value ...", "",
             "Predicted start-up stages and first-request TTFT of one model, from the simulator's own",
             "cost model and start path (docs/warmserve.md, 'The start path'): one start alone on an",
             "idle node of the chosen cluster. The model must fit the cluster as `warmsim compare`",
             "requires (TP divides the heads, a TP group within a node, weights plus one full sequence",
             "in a GPU's pool).", "", "keys:"]
    lines += [f"  {k + '=':<{width + 1}}  {'(required) ' if req else ''}{help_}" for k, (req, help_) in KEYS.items()]
    lines += [f"  {'cluster.KEY=V':<{width + 1}}  a cluster knob, as in `warmsim compare` (e.g. cluster.ssd_gbps=3)",
              f"  {'engine.KEY=V':<{width + 1}}  an engine knob (e.g. engine.max_batched_tokens=8192)"]
    return "\n".join(lines)


def _config(req: EstimateRequest):
    """The composed config `warmsim compare` would use with these overrides (validated like it)."""
    from warmsim.experiments.confpath import compose, group_choices
    from warmsim.experiments.validate import check_config

    overrides = list(req.overrides)
    if req.cluster is not None:
        if req.cluster not in group_choices("cluster"):
            raise UserError(f"estimate: cluster={req.cluster!r} unknown (known: {', '.join(group_choices('cluster'))})")
        overrides.insert(0, f"cluster={req.cluster}")
    if req.system is not None:
        if req.system not in group_choices("system"):
            raise UserError(f"estimate: system={req.system!r} unknown (known: {', '.join(group_choices('system'))})")
        overrides.append(f"system={req.system}")
    try:
        cfg = compose(overrides)  # user config directories too (experiments/confpath.py)
    except UserError:
        raise
    except Exception as e:  # hydra: an unknown key, a bad value
        raise UserError(f"estimate: {' '.join(req.overrides)}: {str(e).splitlines()[0]}") from None
    check_config(cfg)
    return cfg


def start_path_of(req: EstimateRequest, cfg) -> tuple[StartPath, str]:
    """The start path and memory switch: the system's (if named) or the defaults, with the request's
    flags on top."""
    mech = dict(cfg.system.get("mechanisms") or {}) if req.system is not None else {}
    names = {f.name for f in fields(StartPath)}
    path = StartPath(**{k: v for k, v in mech.items() if k in names})
    path = replace(path, **{f: getattr(req, k) for k, f in FLAG_KEYS.items() if getattr(req, k) is not None})
    if req.ready_poll_s is not None:
        path = replace(path, ready_poll_s=req.ready_poll_s)
    memswitch = req.memswitch or mech.get("memswitch", "free_malloc")
    return path, memswitch


@dataclass(frozen=True)
class Estimate:
    """The answer: start-up stages, the first prefill, and their total (the first token's TTFT)."""

    request: EstimateRequest
    model: ServedModel
    profile: str
    measured: bool
    path: StartPath
    memswitch: str
    startup: StartupBreakdown
    prefill_s: float
    #: :func:`~warmsim.sim.costprofile.profile.external_note` of the profile (None: measured by the harness or not at all)
    provenance: str | None = None

    @property
    def ttft_s(self) -> float:
        return self.startup.total_s + self.prefill_s

    def parts(self) -> list[tuple[str, float]]:
        """(label, seconds) of every stage in path order; with ``overlap_load`` the load and
        ``engine_prepare`` run side by side, so the TTFT is not their plain sum."""
        s = self.startup
        mem = "memory (VMM mapping not hidden)" if self.memswitch == "vmm_pool" else "memory (cudaMalloc)"
        return [("process + CUDA context", s.process_s), ("engine process + imports", s.engine_process_s),
                ("engine prepare (config, tokenizer, workers)", s.engine_prepare_s), (mem, s.memory_s),
                ("weight transfer", s.transfer_s), ("load overhead", s.load_overhead_s),
                ("TP communicator", s.tp_comm_s), ("engine init (model, KV set-up, API server)", s.engine_init_s),
                ("KV profiling forward", s.kv_profile_s), ("KV allocation / mapping wait", s.kv_alloc_s),
                ("CUDA graphs", s.cuda_graphs_s), ("router poll", s.ready_poll_s),
                (f"prefill ({self.request.prompt_tokens} tokens)", self.prefill_s)]


def estimate(req: EstimateRequest, cost: CostModel | None = None) -> Estimate:
    """Compute the estimate for ``req`` (building its cost profile unless ``cost`` is given)."""
    from warmsim.experiments.builder import build_cluster, build_cost, build_engine
    from warmsim.experiments.confpath import model_shape
    from warmsim.experiments.validate import check_fit, check_tp

    cfg = _config(req)
    model = ServedModel(req.model, model_shape(req.model), req.tp)  # a user model/NAME.yaml too
    if cost is None:
        if req.gpu_profile is None:
            cost = build_cost(cfg)
        else:
            from warmsim.sim.costmodel import ProfileCostModel
            cost = ProfileCostModel.load(req.gpu_profile)
    cluster, engine = build_cluster(cfg, cost), build_engine(cfg)
    check_tp(model.shape, req.tp, "estimate: tp", cluster.gpus_per_node)
    check_fit({model.name: model}, cluster, engine, where="estimate")
    if req.prompt_tokens > model.shape.max_model_len:
        raise UserError(f"estimate: prompt_tokens: got {req.prompt_tokens}; allowed: at most {req.model}'s "
                        f"max_model_len {model.shape.max_model_len}")
    path, memswitch = start_path_of(req, cfg)
    block = engine.block_size * model.kv_bytes_per_token_per_gpu
    kv = (cluster.gpu_pool_bytes - model.shard_bytes) // block * block  # an empty GPU's pool after the weights
    bd = startup_breakdown(cost, model, req.source, path, engine, memswitch=memswitch,
                           bandwidth=cluster.link_bandwidth(), kv_bytes=kv)
    base = getattr(cost, "base", cost)  # a ScaledCost's profile
    meta = getattr(getattr(base, "fitted", None), "meta", None)
    return Estimate(req, model, cost.name, cost.measured, path, memswitch, bd,
                    cost.prefill_s(model, req.prompt_tokens, 1), external_note(meta) if meta is not None else None)


def format_estimate(e: Estimate) -> str:
    """Human-readable table of the stages and the total."""
    r, p = e.request, e.path
    kind = e.provenance or ("measured" if e.measured else "NOT measured (analytic)")
    flags = ", ".join(f"{k}={str(getattr(p, f)).lower()}" for k, f in FLAG_KEYS.items())
    lines = [f"model {r.model} tp={r.tp} ({e.model.shard_bytes / 1e9:.2f} GB per GPU), source {r.source}, "
             f"memswitch {e.memswitch}" + (f", system {r.system}" if r.system else ""),
             f"start path: {flags}, ready_poll_s={p.ready_poll_s:g}",
             f"profile {e.profile}: {kind}"]
    width = max(len(label) for label, _ in e.parts())
    for label, sec in e.parts():
        lines.append(f"  {label:<{width}}  {sec:10.4f} s")
    if e.startup.prefetch:
        b = e.startup
        lines.append(f"  (the weights, memory .. load overhead, moved from the start beside process .. engine prepare: "
                     f"max({b.process_s + b.engine_process_s + b.engine_prepare_s:.4f}, "
                     f"{b.memory_s + b.transfer_s + b.load_overhead_s:.4f}) s)")
    elif p.overlap_load:
        lines.append(f"  (the load, memory .. TP communicator, ran beside engine prepare: "
                     f"max({e.startup.engine_prepare_s:.4f}, {e.startup.load_s:.4f}) s)")
    lines.append(f"  {'TTFT of first request':<{width}}  {e.ttft_s:10.4f} s")
    return "\n".join(lines)
