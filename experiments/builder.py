"""The one place that wires a config to objects: workload, models, cluster, cost model, system."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from warmsim.experiments import validate
from warmsim.experiments.confpath import CONF_DIR, group_choices, model_shape  # noqa: F401 (CONF_DIR, group_choices: re-exported)
from warmsim.experiments.validate import check_tp
from warmsim.policies.bundle import MECHANISM_KNOBS, Bundle, ShareByInverse
from warmsim.policies.context import RunContext
from warmsim.policies.load_estimate import peak_inflight
from warmsim.sim.cluster import GIB, ClusterSpec
from warmsim.sim.cost import ConstantCostModel, CostModel, DecodeCoeffs, Interference, ScaledCost
from warmsim.sim.engine import EngineSpec
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import Knob, check_args, count, flag, nonneg, positive, text
from warmsim.sim.mechanisms import MECHANISMS as _EXTRAS  # mechanisms.<name>: {knobs} (sim/mechanisms)
from warmsim.sim.mechanisms import check_knobs
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.sim.models import ServedModel
from warmsim.sim.simulation import SimSpec

#: The ``mechanisms:`` keys (the Bundle's non-policy fields, :data:`warmsim.policies.bundle.MECHANISM_KNOBS`).
MECHANISMS = frozenset(MECHANISM_KNOBS) | frozenset(_EXTRAS)  # + the serving mechanisms (sim/mechanisms)
#: A system config's own keys besides its policies (``POLICY_SLOTS``) and ``mechanisms``.
SYSTEM_KNOBS: dict[str, Knob] = {
    "name": text("the system's name"),
    "visible_nodes": count("nodes the system may use (the first ones); null = all", 65536, null=True),
    "host_cache_gib": nonneg("the system's host-memory checkpoint cache per node in GiB; null = every checkpoint",
                             1e7, null=True),
    "host_cache_preload": flag("the host cache starts filled"),
    "needs_node_pending": flag("the activator reads each node's queued load bytes"),
    "sizing": Knob("mapping", help="static sizing: per_instance, headroom"),
    "mechanisms": Knob("mapping", null=True, help="mechanism flags (policies/bundle.py MECHANISM_KNOBS)"),
}
#: The policy slots of a system config, in build order (each null or a node with ``_target_``).
POLICY_SLOTS = ("router", "autoscaler", "activator", "placer", "kv_policy", "sharing", "initial", "predictor")
#: What the simulator uses of each policy slot (the Protocols of policies/base.py).
SLOT_API: dict[str, tuple[str, ...]] = {
    "router": ("route",), "autoscaler": ("decide", "period_s"), "activator": ("choose",),
    "placer": ("plan", "period_s"), "kv_policy": ("step", "period_s"), "sharing": ("factor",),
    "initial": ("place",), "predictor": ("predict", "observe", "window_s"),
}
SIZING_KNOBS: dict[str, Knob] = {
    "per_instance": count("in-flight requests one static instance is sized for"),
    "headroom": positive("margin over the estimated peak", 100),
}


def _plain(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def _get(cfg, key: str, where: str):
    try:
        v = OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as e:  # missing mandatory value, interpolation error
        raise UserError(f"config key {where}.{key}: {e}") from None
    if v is None:
        raise UserError(f"config key {where}.{key} is missing")
    return v


def _num(cfg, key: str, where: str, positive=True) -> float:
    v = _get(cfg, key, where)
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise UserError(f"config key {where}.{key}: '{v}' is not a number") from None
    if not math.isfinite(x) or (not positive and x < 0):  # (the CLI's schema, experiments/validate.py, says more)
        raise UserError(f"config key {where}.{key}: got {v}; allowed: a finite number {'> 0' if positive else '>= 0'}")
    if positive and not x > 0:
        raise UserError(f"config key {where}.{key}: must be > 0, got {v}")
    return x


# ---- models and cluster -----------------------------------------------------------------------------
def build_models(cfg) -> dict[str, ServedModel]:
    entries = _plain(cfg.models)
    if not isinstance(entries, list) or not entries:
        raise UserError("config key models: must be a non-empty list of {name, base, tp}")
    out: dict[str, ServedModel] = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "name" not in e:
            raise UserError(f"config key models[{i}]: needs name, base and tp")
        shape = model_shape(str(e.get("base", e["name"])))
        tp = e.get("tp", 1)
        check_tp(shape, tp, f"config key models[{i}].tp")  # the same rule as `warmsim estimate`
        if e["name"] in out:
            raise UserError(f"config key models[{i}].name: '{e['name']}' appears twice")
        out[str(e["name"])] = ServedModel(str(e["name"]), shape, tp)
    return out


def build_cluster(cfg, cost: CostModel) -> ClusterSpec:
    c = cfg.cluster

    def bw(key: str, link: str) -> float:
        v = c.get(key)
        return cost.link_bandwidth(link) if v is None else _num(c, key, "cluster") * 1e9

    nodes, gpn = int(_num(c, "nodes", "cluster")), int(_num(c, "gpus_per_node", "cluster"))
    frac = _num(c, "memory_fraction", "cluster")
    if frac > 1:
        raise UserError(f"config key cluster.memory_fraction: must be <= 1, got {frac}")
    cache = c.get("host_cache_gib")
    return ClusterSpec(
        nodes=nodes, gpus_per_node=gpn, gpu_hbm_bytes=int(_num(c, "gpu_hbm_gib", "cluster") * GIB),
        memory_fraction=frac, pcie_pinned_bw=bw("pcie_pinned_gbps", "pcie_h2d_pinned"),
        pcie_pageable_bw=bw("pcie_pageable_gbps", "pcie_h2d_pageable"), host_mem_bw=bw("host_mem_gbps", "host_mem"),
        ssd_bw=bw("ssd_gbps", "ssd_read"), nic_bw=bw("nic_gbps", "nic"), nvlink_bw=bw("nvlink_gbps", "nvlink"),
        page_cache_read_bw=bw("page_cache_read_gbps", "page_cache_read"),
        host_cache_bytes=None if cache is None else int(_num(c, "host_cache_gib", "cluster", positive=False) * GIB))


def build_engine(cfg) -> EngineSpec:
    e = cfg.engine
    out = cfg.get("output") or {}
    return EngineSpec(int(_num(e, "block_size", "engine")), int(_num(e, "max_num_seqs", "engine")),
                      int(_num(e, "max_batched_tokens", "engine")),
                      prefix_caching=bool(e.get("prefix_caching", False)),
                      chunked_prefill=bool(e.get("chunked_prefill", False)),
                      record_steps=bool(out.get("steps", False)))


def check_fit(models: dict[str, ServedModel], cluster: ClusterSpec, engine: EngineSpec) -> None:
    """Every model must fit its TP group: weights plus KV for one full-length sequence per GPU
    (:func:`warmsim.experiments.validate.check_fit`, shared with ``warmsim estimate``)."""
    validate.check_fit(models, cluster, engine)


# ---- cost model -------------------------------------------------------------------------------------
def build_cost(cfg) -> CostModel:
    c = cfg.cost
    kind = c.get("kind")
    if kind == "profile":
        from warmsim.sim.costmodel import ProfileCostModel  # torch-free
        cost = ProfileCostModel.load(str(_get(c, "profile", "cost")))
        scale = _plain(c.get("scale")) or {}
        return ScaledCost(cost, {k: float(v) for k, v in scale.items()}) if scale else cost
    if kind == "constant":
        n = lambda k: _num(c, k, "cost", positive=False)  # noqa: E731
        return ConstantCostModel(
            name="constant", process_start=n("process_start"), engine_init=n("engine_init"), alloc=n("alloc"),
            free=n("free"), vmm_map_per_gib=n("vmm_map_per_gib"), vmm_unmap_per_gib=n("vmm_unmap_per_gib"),
            load_overhead=n("load_overhead"), prefill_base_s=n("prefill_base_s"),
            prefill_per_token_s=n("prefill_per_token_s"),
            decode=DecodeCoeffs(n("decode_base_s"), n("decode_per_seq_s"), n("decode_per_ctx_token_s")),
            bandwidth=_num(c, "bandwidth_gbps", "cost") * 1e9,
            slowdown=Interference(n("compute_slowdown"), n("copy_slowdown")))
    raise UserError(f"config key cost.kind: '{kind}' is not one of profile, constant")


# ---- workload -------------------------------------------------------------------------------------
def build_workload(cfg, models: dict[str, ServedModel]):
    from warmsim.traces.builders import build_workload as build
    wl = build(_plain(cfg.workload), list(models), int(cfg.seed))
    wl.validate()
    if len(wl) == 0:
        raise UserError(f"config key workload: the workload holds no request ({wl.meta.get('kind', '?')}, "
                        f"{wl.duration_s:g} s); a longer workload.duration_s or a higher rate gives it some")
    return wl


# ---- system -------------------------------------------------------------------------------------
def system_config(name: str) -> DictConfig:
    """The composed ``system/<name>.yaml`` config (overlays resolved), or a UserError listing the
    known systems."""
    from warmsim.experiments.confpath import compose, find
    if find("system", name) is None:
        raise UserError(f"unknown system '{name}' (config key systems / system; known: "
                        f"{', '.join(group_choices('system'))})")
    return compose([f"system={name}"]).system


def _policy_class(node):
    """The class a policy node's ``_target_`` names, or None (instantiate then reports the problem).
    Quiet: hydra's ``get_class`` would log its own error first."""
    import importlib
    parts = str(node.get("_target_", "")).split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001 - not a module at this depth (or a broken one: instantiate says)
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj if isinstance(obj, type) else None
    return None


def named_policies(scfg: DictConfig) -> DictConfig:
    """``scfg`` with every policy slot given by name (``router: sllm``, e.g. from the per-system
    override ``overrides.<system>.router=sllm``) replaced by that config of the slot's group
    (``router/sllm.yaml``, shipped or in a user config directory)."""
    from warmsim.experiments.confpath import find
    for key in POLICY_SLOTS:
        choice = scfg.get(key)
        if isinstance(choice, str):
            path = find(key, choice)
            if path is None:
                raise UserError(f"config key {key}: got {choice!r}; allowed: null, a policy (a mapping with _target_) "
                                f"or a config of {key}/ ({', '.join(group_choices(key)) or 'none'})")
            scfg[key] = OmegaConf.load(path)
    return scfg


def check_system(scfg, name: str) -> None:
    """A system config's own keys, its mechanism flags and its policies' arguments, each against its
    knob (``SYSTEM_KNOBS``, :data:`MECHANISM_KNOBS`, the policy classes' ``KNOBS``): a UserError
    naming ``system <name>: config key <key>`` before anything is built."""
    from warmsim.experiments.confpath import add_import_paths
    add_import_paths()  # own policies by import path: modules in a user config directory
    known = set(SYSTEM_KNOBS) | set(POLICY_SLOTS)
    for key in scfg:
        if key not in known:
            raise UserError(f"system {name}: unknown key '{key}' (known: {', '.join(sorted(known))})")
    try:
        scfg = named_policies(OmegaConf.create(_plain(scfg)))
        for key, knob in SYSTEM_KNOBS.items():
            if key in scfg:
                knob.check(key, _plain(scfg.get(key)))
        mech = _plain(scfg.get("mechanisms")) or {}
        for key, v in mech.items():
            if key in _EXTRAS:  # a serving mechanism's knobs: checked by sim/mechanisms check_knobs
                continue
            if key not in MECHANISM_KNOBS:
                raise UserError(f"config key mechanisms.{key}: unknown mechanism (known: {', '.join(MECHANISM_KNOBS)}: "
                                "the fields of policies/bundle.py Bundle)")
            MECHANISM_KNOBS[key].check(f"mechanisms.{key}", v)
        sizing = _plain(scfg.get("sizing")) or {}
        for key, v in sizing.items():
            if key not in SIZING_KNOBS:
                raise UserError(f"config key sizing.{key}: unknown (known: {', '.join(SIZING_KNOBS)})")
            SIZING_KNOBS[key].check(f"sizing.{key}", v)
        for key in POLICY_SLOTS:
            node = scfg.get(key)
            if node is None:
                continue
            if not OmegaConf.is_dict(node) or "_target_" not in node:
                raise UserError(f"config key {key}: got {_plain(node)!r}; allowed: null or a policy "
                                "(a mapping with _target_, docs/extending.md)")
            cls = _policy_class(node)
            if cls is not None:
                check_args(cls, {k: v for k, v in _plain(node).items() if k != "_target_"}, key)
    except UserError as e:
        raise UserError(f"system {name}: {e}") from None


def predictor_needs(pred) -> tuple[str, ...]:
    """The inputs the ``predictor`` node's class declares in ``needs`` (experiments/predictor_inputs.py)."""
    from hydra.utils import get_class
    return tuple(getattr(get_class(str(pred._target_)), "needs", ()))


def _predictor(pred, name: str, workload, models, cost: CostModel, cfg, prepass: dict[str, Any] | None):
    """The ``predictor`` node instantiated with its inputs: the workload's (history) and the pre-pass's."""
    from warmsim.experiments.predictor_inputs import workload_inputs
    needs = predictor_needs(pred)
    args = {**workload_inputs(pred, needs, workload, models, cost, cfg), **(prepass or {})}
    missing = [n for n in needs if n not in args]
    if missing:
        raise UserError(f"system {name}: predictor {pred._target_} needs {', '.join(missing)}, observed in a pre-pass "
                        "that the runner runs first (warmsim.experiments.runner.build_system_bundle)")
    return instantiate(pred, **args)


def build_bundle(scfg, workload, models, cluster: ClusterSpec, cost: CostModel, cfg,
                 prepass: dict[str, Any] | None = None) -> Bundle:
    """Instantiate a system's policies; fill the parts that depend on the workload. ``prepass``: what
    the runner's pre-pass observed for the predictor (:func:`warmsim.experiments.runner.prepass_inputs`)."""
    scfg = OmegaConf.create(_plain(scfg))
    if not OmegaConf.is_dict(scfg):
        raise UserError(f"system config: got {_plain(scfg)!r}; allowed: a mapping with name, router, ... "
                        "(experiments/conf/system/)")
    name = str(scfg.get("name", "?"))
    check_system(scfg, name)
    scfg = named_policies(scfg)
    mech = _plain(scfg.get("mechanisms")) or {}
    parts = {}
    try:
        for key in POLICY_SLOTS[:-2]:  # initial and predictor need the workload: below
            node = scfg.get(key)
            parts[key] = None if node is None else instantiate(node)
        init = scfg.get("initial")
        if init is not None and init.get("instances") == "auto":
            from warmsim.policies.static import size_for_peak
            if "per_instance" not in (scfg.get("sizing") or {}):
                raise UserError(f"system {name}: initial.instances auto needs sizing.per_instance")
            per = int(scfg.sizing.per_instance)
            peaks = peak_inflight(workload, models, cost, int(cfg.sim.service_estimate_batch))
            counts = size_for_peak(peaks, {m: s.tp for m, s in models.items()}, per, cluster.n_gpus,
                                   float(scfg.sizing.get("headroom", 1.0)))
            parts["initial"] = instantiate(init, instances=counts)
        else:
            parts["initial"] = None if init is None else instantiate(init)
        pred = scfg.get("predictor")
        parts["predictor"] = None
        if pred is not None:  # CSP history from the workload; oracle truth from the runner's pre-pass
            parts["predictor"] = _predictor(pred, name, workload, models, cost, cfg, prepass)
    except UserError:
        raise
    except Exception as e:  # hydra wraps a target's error: report the cause, on one line
        cause: BaseException = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, UserError):  # a policy's own check (e.g. two knobs that disagree)
            raise UserError(f"system {name}: {' '.join(str(cause).split())}") from None
        hint = _slot_hint(scfg, str(cause))
        raise UserError(f"system {name}: cannot build its policies: {' '.join(str(cause).split())}{hint}") from None
    for key, obj in parts.items():  # what the simulator calls on each (policies/base.py), before it runs
        missing = [a for a in SLOT_API[key] if obj is not None and not hasattr(obj, a)]
        if missing:
            raise UserError(f"system {name}: config key {key}: {type(obj).__name__} (from "
                            f"{scfg[key].get('_target_')}) has no {', '.join(missing)}; a {key} needs "
                            f"{', '.join(SLOT_API[key])} (policies/base.py, docs/extending.md)")
    if parts["sharing"] is None:
        parts["sharing"] = ShareByInverse()
    shares = workload.meta.get("shares")
    rate_shares = dict(zip(workload.models, map(float, shares))) if shares and len(shares) == len(workload.models) else None
    ctx = RunContext(models, cost, parts["sharing"], rate_shares)
    for key, obj in parts.items():
        if obj is not None and hasattr(obj, "with_context"):
            parts[key] = obj.with_context(ctx)
    if parts["activator"] is None and parts["initial"] is None:
        raise UserError(f"system {name}: needs an activator or an initial placement")
    extras = {k: check_knobs(k, mech.pop(k), name) for k in list(mech) if k in _EXTRAS}
    if "kv_balloon" in extras and parts["kv_policy"] is not None:
        raise UserError(f"system {name}: mechanisms.kv_balloon and kv_policy both manage KV blocks; use one")
    bundle = Bundle(name=name, **parts, **mech, extras=extras)
    if bundle.memswitch not in MEMSWITCHES:  # the mechanisms' table, sim/memswitch/
        raise UserError(f"system {name}: mechanisms.memswitch must be {' or '.join(MEMSWITCHES)}")
    bundle.meta["needs_node_pending"] = bool(scfg.get("needs_node_pending", False))
    _warn_unused_replicas(bundle)
    return bundle


def _slot_hint(scfg, message: str) -> str:
    """For ``unexpected keyword argument`` (a slot's class swapped by an overlay or override that kept
    the old class's arguments): how to give the whole slot."""
    if "unexpected keyword argument" not in message:
        return ""
    slot = next((k for k in POLICY_SLOTS if OmegaConf.is_dict(scfg.get(k)) and
                 str(scfg[k].get("_target_", "")).rsplit(".", 1)[-1] + ".__init__" in message), "<slot>")
    return (f"; a policy of another class in {slot} needs the whole slot, not a merge into the old one (which keeps the old "
            f"class's arguments): '~system.{slot}' '+system.{slot}={{_target_: ...}}' on the command line, "
            f"overrides.<system>.{slot}={{_target_: ...}} in compare, or a system file that does not inherit the "
            f"slot (docs/configs.md, \"A policy of another class\")")


def _warn_unused_replicas(bundle: Bundle) -> None:
    """A placer that prewarms replicas next to an activator that never takes one over: every replica
    is wasted (0 prewarm hits). Warned at build time; an activator says it adopts replicas with a
    class attribute ``adopts_replicas = True`` (docs/extending.md)."""
    if bundle.placer is None or bundle.activator is None or getattr(bundle.activator, "adopts_replicas", False):
        return
    import warnings

    from warmsim.sim.errors import SetupWarning
    declared = hasattr(bundle.activator, "adopts_replicas")
    warnings.warn(SetupWarning(
        f"system {bundle.name}: placer {type(bundle.placer).__name__} prewarms replicas but activator "
        f"{type(bundle.activator).__name__} {'never takes one over' if declared else 'does not say it takes them over'}"
        " (adopts_replicas): expect 0 prewarm hits; use an activator that returns Activate(replica=...), e.g. "
        "WarmServeActivator (docs/extending.md, \"Write a prewarmer\")"), stacklevel=2)


def system_cluster(scfg, cluster: ClusterSpec) -> ClusterSpec:
    """The cluster as a system sees it: a system may use only its first ``visible_nodes`` nodes (the
    artifact runs MuxServe on one node: its ``CUDA_VISIBLE_DEVICES``), set its own host-memory checkpoint cache
    (``host_cache_gib``; absent = the cluster's, null = every checkpoint cached) and whether it
    starts filled (``host_cache_preload``)."""
    if scfg.get("visible_nodes") is not None:
        n = scfg.get("visible_nodes")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= cluster.nodes:
            raise UserError(f"system {scfg.get('name')}: visible_nodes must be a whole number from 1 to "
                            f"cluster.nodes ({cluster.nodes}), got {n!r}")
        cluster = replace(cluster, nodes=n)
    if "host_cache_preload" in scfg:
        cluster = replace(cluster, host_cache_preload=bool(scfg.get("host_cache_preload")))
    if "host_cache_gib" not in scfg:
        return cluster
    v = scfg.get("host_cache_gib")
    if v is None:
        return replace(cluster, host_cache_bytes=None)
    try:
        gib = float(v)
    except (TypeError, ValueError):
        raise UserError(f"system {scfg.get('name')}: host_cache_gib '{v}' is not a number") from None
    if gib < 0:
        raise UserError(f"system {scfg.get('name')}: host_cache_gib must be >= 0")
    return replace(cluster, host_cache_bytes=int(gib * GIB))


def build_faults(cfg, cluster: ClusterSpec) -> tuple[tuple, str]:
    """The run's faults (``faults`` group) checked against the cluster, and what happens to the
    requests a lost instance held."""
    from warmsim.sim.faults import parse_faults
    f = cfg.get("faults")
    if f is None:
        return (), "retry"
    f = _plain(f)
    if not isinstance(f, dict):
        raise UserError(f"config key faults: must be a mapping with events and on_failure, got {f!r}")
    unknown = set(f) - {"events", "on_failure"}
    if unknown:
        raise UserError(f"config key faults: unknown key(s) {sorted(unknown)} (known: events, on_failure)")
    events = f.get("events") or []
    if not isinstance(events, list):
        raise UserError(f"config key faults.events: must be a list of faults, got {events!r}")
    on_failure = f.get("on_failure", "retry")
    if on_failure not in ("retry", "drop"):
        raise UserError(f"config key faults.on_failure: '{on_failure}' is not one of retry, drop")
    return parse_faults(events, cluster.nodes, cluster.gpus_per_node), on_failure


@dataclass
class Setup:
    """Everything one run needs, built from one config."""

    workload: Any
    models: dict[str, ServedModel]
    cluster: ClusterSpec
    cost: CostModel
    engine: EngineSpec
    sim: SimSpec

    @cached_property
    def workload_notes(self) -> list[str]:
        """What building the workload changed (:func:`warmsim.experiments.outputs.workload_notes`), computed
        once: the run's first lines, workload.json and report.md all show it."""
        from warmsim.experiments.outputs import workload_notes
        return workload_notes(self.workload, self.models)


def build_setup(cfg) -> Setup:
    cost = build_cost(cfg)
    models = build_models(cfg)
    cluster = build_cluster(cfg, cost)
    engine = build_engine(cfg)
    check_fit(models, cluster, engine)
    sim = build_sim(cfg, cluster)
    workload = build_workload(cfg, models)
    return Setup(workload, models, cluster, cost, engine, sim)


def build_sim(cfg, cluster: ClusterSpec) -> SimSpec:
    """The ``sim`` knobs and the run's faults (checked against ``cluster``)."""
    s = cfg.sim
    return SimSpec(_num(s, "retry_s", "sim"), _num(s, "request_timeout_s", "sim"), _num(s, "drain_s", "sim", False),
                   _num(s, "load_window_s", "sim"), int(_num(s, "service_estimate_batch", "sim")),
                   bool(s.get("check_invariants", False)), *build_faults(cfg, cluster),
                   prewarm_lead_s=_num(s, "prewarm_lead_s", "sim", False))
