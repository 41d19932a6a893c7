"""One validation layer for the composed config: a typed schema with bounds and a help per knob.

:func:`check_config` runs before anything is built or written (``warmsim compare`` / ``run``, each
job of a sweep); every bad value is a :class:`warmsim.sim.errors.UserError` of one line naming the key, the
value and what is allowed, e.g.::

    config key cluster.nodes: got inf; allowed: an integer in [1, 4096] (servers)

Covered here: the top-level keys (``seed``, ``systems``, ``progress``), the ``cluster``, ``engine``,
``sim``, ``metrics``, ``slo``, ``output``, ``models``, ``cost`` and ``workload`` groups, unknown keys
in them (including ones a ``+key=value`` override added), and a few cross-key checks (a warm-up
shorter than the run, a bounded number of requests). The ``system`` group is checked here only for
its memory switch (a name of ``sim/memswitch/``'s table): its policies validate their own arguments
(``__post_init__``; weight sources against ``sim/sources/``'s table) when the builder instantiates them.
The workload kinds and their knobs come from the kinds' table (``traces/builders.py`` ``KINDS``), so
a new kind needs no change here.

The model/cluster checks (:func:`check_tp`, :func:`check_fit`) are shared by the builder and by
``warmsim estimate``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_SECONDS, MAX_TOKENS, MIN_PERIOD_S, Knob  # noqa: F401 (re-exported)

#: The hydra config directory (the same as ``experiments.builder.CONF_DIR``, without its imports).
CONF_DIR = Path(__file__).resolve().parent / "conf"
#: Upper bound on the requests one workload may hold (rate x duration), so that a typo such as
#: ``workload.rate_scale=1e7`` is an error instead of a MemoryError minutes later.
MAX_REQUESTS = 50_000_000


def _pos(help_: str, hi: float, kind: str = "float", null: bool = False) -> Knob:
    return Knob(kind, 0 if kind == "float" else 1, hi, lo_open=kind == "float", null=null, help=help_)


def _nonneg(help_: str, hi: float, kind: str = "float", null: bool = False) -> Knob:
    return Knob(kind, 0, hi, null=null, help=help_)


_GBPS = 1e6  # 1 PB/s: beyond any link
_TOK = float(MAX_TOKENS)

#: The fixed-shape groups: key -> knob.
GROUPS: dict[str, dict[str, Knob]] = {
    "cluster": {
        "nodes": _pos("servers", 4096, "int"),
        "gpus_per_node": _pos("GPUs per server", 64, "int"),
        "gpu_hbm_gib": _pos("HBM per GPU in GiB", 16384),
        "memory_fraction": Knob("float", 0, 1, lo_open=True, help="share of HBM the memory pool hands out"),
        "host_cache_gib": _nonneg("host-memory checkpoint cache per server in GiB", 1e7, null=True),
        "pcie_pinned_gbps": _pos("GB/s", _GBPS, null=True),
        "pcie_pageable_gbps": _pos("GB/s", _GBPS, null=True),
        "host_mem_gbps": _pos("GB/s", _GBPS, null=True),
        "ssd_gbps": _pos("GB/s", _GBPS, null=True),
        "nic_gbps": _pos("GB/s", _GBPS, null=True),
        "nvlink_gbps": _pos("GB/s", _GBPS, null=True),
        "page_cache_read_gbps": _pos("GB/s", _GBPS, null=True),
    },
    "engine": {
        "block_size": _pos("tokens per KV-cache block", 65536, "int"),
        "max_num_seqs": _pos("sequences an engine runs at once", 1_000_000, "int"),
        "max_batched_tokens": _pos("prompt tokens per prefill step (with chunked prefill: tokens per step)", _TOK,
                                   "int"),
        "prefix_caching": Knob("bool", help="vLLM's automatic prefix caching (off in WarmServe's artifact)"),
        "chunked_prefill": Knob("bool", help="vLLM's chunked prefill (off in WarmServe's artifact)"),
    },
    "sim": {
        "retry_s": Knob("float", MIN_PERIOD_S, 86400, help="seconds between re-checks of held requests"),
        "request_timeout_s": _pos("seconds a request may wait at the router", MAX_SECONDS),
        "drain_s": _nonneg("seconds unfinished requests get after the workload ends", MAX_SECONDS),
        "load_window_s": _pos("seconds of the autoscaler's averaging window", 86400),
        "service_estimate_batch": _pos("largest batch of the in-flight load estimate", 1_000_000, "int"),
        "check_invariants": Knob("bool", help="run the invariant checker inside the run (sim/invariants.py)"),
        "prewarm_lead_s": _nonneg("seconds the system runs before the first request", 86400),
    },
    "metrics": {
        "unfinished_ttft_s": _pos("TTFT charged to a dropped request", 1e9),
        "fast_ttft_s": _pos("threshold of the fast-TTFT column in seconds", 1e6),
        "warmup_s": _nonneg("seconds left out of the request statistics; less than workload.duration_s", MAX_SECONDS),
    },
    "slo": {
        "ttft_s": _pos("SLO on the time to first token in seconds", 1e6),
        "tpot_s": _pos("SLO on the time per output token in seconds", 1e6),
    },
    "output": {
        "requests": Knob("bool", help="write requests.parquet"),
        "timeline": Knob("bool", help="write timeline.parquet"),
        "steps": Knob("bool", help="write steps.parquet (one row per engine step; slower)"),
    },
}

#: Top-level scalar keys.
TOP: dict[str, Knob] = {
    "seed": Knob("int", 0, 2**32 - 1, help="seed of the run's random generator"),
    "progress": Knob("choice", choices=("auto", True, False, "true", "false"), help="progress bar"),
}

#: Workload knobs by name (a kind uses a subset; which keys a kind knows comes from its builder).
WORKLOAD: dict[str, Knob] = {
    "trace": Knob("str", help="a trace name or file"),
    "tokens_from": Knob("str", null=True, help="a per-request trace for token lengths"),
    "alpha": _nonneg("popularity exponent", 100),
    "start_s": _nonneg("window start in seconds", 1e10),
    "duration_s": _pos("workload length in seconds; null = the whole trace (kinds mapped, trace)", MAX_SECONDS,
                       null=True),
    "unmapped": Knob("choice", choices=("error", "drop"), help="requests whose trace model maps to no served model"),
    "time_scale": _pos("trace seconds replayed per second", 1e4),
    "rate_scale": _pos("thinning (<1) or replication (>1) of the requests", 1000),
    "split": Knob("choice", choices=("request", "conversation"), help="what the power law assigns to models"),
    "sort": Knob("bool", help="sort a file whose timestamps go backwards"),
    "process": Knob("choice", choices=("poisson", "gamma"), help="inter-arrival distribution"),
    "cv": _pos("coefficient of variation of the gaps", 100),
    "rates": Knob("floats", 0, 1e6, null=True, help="per-model request rates in req/s"),
    "total_rate": _pos("total request rate in req/s", 1e6, null=True),
    "rps": _pos("total request rate in req/s", 1e6),
    "diurnal_amplitude": _nonneg("relative amplitude of the rate modulation", 1),
    "diurnal_period_s": _pos("period of the modulation in seconds", 1e9),
    "diurnal_phase_s": Knob("float", -1e9, 1e9, help="time shift of the modulation in seconds"),
    "prompt_tokens": _pos("fixed prompt length", _TOK, "int"),
    "output_tokens": _pos("fixed output length", _TOK, "int"),
    "history_days": _nonneg("days of history (warmserve: null = the artifact's, every day from Monday)", 366, "int",
                            null=True),
    "prompt_offset_tokens": _nonneg("tokens taken off each prompt before it is sent", _TOK, "int"),
    "max_prompt_tokens": _pos("prompt length cap", _TOK, "int", null=True),
    "min_output_tokens": _nonneg("output length floor", _TOK, "int"),
    "max_output_tokens": _pos("output length cap", _TOK, "int", null=True),
    "window_start_s": _nonneg("replayed window start in seconds", 1e10),
    "window_s": _pos("replayed window length in seconds", MAX_SECONDS),
    "burstiness_cv": _nonneg("coefficient of variation of the re-timed gaps (0: equal gaps)", 100, null=True),
    "history_window_s": _pos("history window length in seconds", MAX_SECONDS, null=True),
    "source": Knob("choice", choices=("models", "clients"), help="what ServeGen series map onto the models"),
    "servegen_models": Knob("strs", help="ServeGen models"),
    "mapping": Knob("choice", choices=("contiguous", "striped"), help="assignment of client streams"),
}

#: ``cost`` knobs by kind.
COST: dict[str, dict[str, Knob]] = {
    "profile": {"profile": Knob("str", help="a shipped profile name or a profile directory"),
                "scale": Knob("mapping", null=True, help="factors on start costs and link capacities (sim/cost.py ScaledCost)")},
    "constant": {
        **{k: _nonneg("seconds", 1e6) for k in (
            "process_start", "engine_init", "alloc", "free", "vmm_map_per_gib", "vmm_unmap_per_gib",
            "load_overhead", "prefill_base_s", "prefill_per_token_s", "decode_base_s", "decode_per_seq_s",
            "decode_per_ctx_token_s")},
        "bandwidth_gbps": _pos("GB/s of every link", _GBPS),
        "compute_slowdown": _nonneg("fraction compute slows down during a copy", 100),
        "copy_slowdown": _nonneg("fraction a copy slows down during compute", 100),
    },
}

MODEL_KEYS = ("name", "base", "tp")
#: Top-level keys every run reads (a ``~key`` override cannot remove them).
REQUIRED_TOP = ("seed", "systems", "system", "cluster", "models", "workload", "cost", "engine", "sim", "metrics",
                "slo", "output")
#: Largest tensor-parallel degree a model entry may ask for (a node's GPUs bound it further).
MAX_TP = 64


def _plain(node) -> Any:
    """``node`` as plain Python, every ``${...}`` resolved; one that cannot be resolved is a UserError
    naming its key."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    if not isinstance(node, (DictConfig, ListConfig)):
        return node
    try:
        return OmegaConf.to_container(node, resolve=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        msg = (str(getattr(e, "msg", None) or e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError((f"config key {key}: " if key else "config: ") + " ".join(msg.split())) from None


def _mapping(key: str, node: Any) -> Mapping:
    if not isinstance(node, Mapping):
        raise UserError(f"config key {key}: got {node!r}; allowed: a mapping of its knobs")
    return node


@functools.cache
def _shipped_keys(group: str) -> frozenset[str]:
    """Keys the shipped YAML files give ``group`` (a group directory's files, or a section of
    config.yaml): knobs added there later are known even before this schema learns their bounds.
    Read once per process (the shipped files do not change; check_config runs per job)."""
    import yaml

    keys: set[str] = set()
    files = sorted((CONF_DIR / group).glob("*.yaml"))
    for f in files or [CONF_DIR / "config.yaml"]:
        try:
            d = yaml.safe_load(f.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not files:
            d = d.get(group) or {}
        if isinstance(d, Mapping):
            keys |= {str(k) for k in d if k != "defaults"}
    return frozenset(keys)


def _check_group(key: str, node: Any, schema: Mapping[str, Knob]) -> Mapping:
    node = _mapping(key, node)
    extra = _shipped_keys(key.split(".")[0])
    for k in node:
        if k not in schema and k not in extra:
            raise UserError(f"config key {key}.{k}: unknown key (known: {', '.join(schema)})")
    for k, knob in schema.items():
        if k in node:  # (a knob the config lacks is the builder's "missing" error)
            knob.check(f"{key}.{k}", node[k])
    return node


def _workload_defaults() -> dict[str, Mapping]:
    """Each workload kind's knobs with their defaults, from the kinds' table (traces/builders.py)."""
    from warmsim.traces.builders import KINDS
    return {name: kind.DEFAULTS for name, kind in KINDS.items()}


def check_workload(node: Any) -> Mapping:
    """The ``workload`` group: a known kind, its known keys, each within bounds, a bounded size."""
    node = _mapping("workload", node)
    defaults = _workload_defaults()
    kind = node.get("kind")
    if kind not in defaults:
        raise UserError(f"config key workload.kind: got {kind!r}; allowed: one of {', '.join(defaults)}")
    known = defaults[kind]
    for k, v in node.items():
        if k == "kind":
            continue
        if k == "prefix":  # every kind: the shared-prefix recipe (traces/prefix.py)
            check_prefix(v)
            continue
        if k not in known:
            raise UserError(f"config key workload.{k}: unknown key for kind {kind!r} (known: {', '.join(known)})")
        if k in WORKLOAD:
            WORKLOAD[k].check(f"workload.{k}", v)
    vals = {**known, **node}
    lo, hi = vals.get("min_output_tokens"), vals.get("max_output_tokens")
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        raise UserError(f"config key workload.min_output_tokens: got {lo}; allowed: at most "
                        f"workload.max_output_tokens ({hi})")
    duration = float(vals.get("duration_s") or 0)
    # the rate knobs of any kind that has them (a replayed trace's rate is the trace's own)
    rate = sum(vals["rates"]) if vals.get("rates") else vals.get("rps", vals.get("total_rate"))
    if rate is not None and rate * duration > MAX_REQUESTS:
        raise UserError(f"config key workload.duration_s: {duration:g} s at {rate:g} req/s makes "
                        f"{rate * duration:.3g} requests; allowed: at most {MAX_REQUESTS:.0e} per workload")
    return node


#: ``workload.prefix`` knobs (:mod:`warmsim.traces.prefix`).
PREFIX: dict[str, Knob] = {
    "kind": Knob("choice", choices=("multi_turn", "none"), help="recipe of shared prompt prefixes"),
    "sessions": _pos("conversations open at once per model", 10_000_000, "int"),
    "turns": Knob("float", 1, 1e9, help="mean turns per conversation"),
    "system_prompt_tokens": _nonneg("leading prompt tokens every request of a model shares", _TOK, "int"),
    "block_tokens": _pos("prompt tokens one prefix id stands for", 65536, "int"),
}


def check_prefix(node: Any) -> None:
    """``workload.prefix``: null, or a mapping of the recipe's knobs."""
    if node is None:
        return
    node = _mapping("workload.prefix", node)
    for k, v in node.items():
        if k not in PREFIX:
            raise UserError(f"config key workload.prefix.{k}: unknown key (known: {', '.join(PREFIX)})")
        PREFIX[k].check(f"workload.prefix.{k}", v)


def check_cost(node: Any) -> None:
    node = _mapping("cost", node)
    kind = node.get("kind")
    if kind not in COST:
        raise UserError(f"config key cost.kind: got {kind!r}; allowed: one of {', '.join(COST)}")
    _check_group("cost", {k: v for k, v in node.items() if k != "kind"}, COST[kind])
    if kind == "profile":
        check_cost_scale(node.get("scale"))


def check_cost_scale(scale: Any) -> None:
    """``cost.scale``: a mapping of :data:`warmsim.sim.cost.SCALABLE` names to factors in (0, 100]."""
    from warmsim.sim.cost import SCALABLE
    if scale is None:
        return
    if not isinstance(scale, Mapping):
        raise UserError(f"config key cost.scale: got {scale!r}; allowed: a mapping of {', '.join(SCALABLE)} to factors")
    for k, v in scale.items():
        if k not in SCALABLE:
            raise UserError(f"config key cost.scale.{k}: unknown (known: {', '.join(SCALABLE)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100:
            raise UserError(f"config key cost.scale.{k}: got {v!r}; allowed: a factor in (0, 100]")


def check_models(entries: Any) -> None:
    """The ``models`` list: entries of name, base (a catalog model) and tp (dividing its heads)."""
    from warmsim.experiments.confpath import model_shape
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise UserError(f"config key models: got {entries!r}; allowed: a non-empty list of {{name, base, tp}}")
    seen = set()
    for i, e in enumerate(entries):
        where = f"models[{i}]"
        if not isinstance(e, Mapping) or not isinstance(e.get("name"), str) or not e.get("name"):
            raise UserError(f"config key {where}: got {e!r}; allowed: a mapping with name, base and tp")
        extra = [k for k in e if k not in MODEL_KEYS]
        if extra:
            raise UserError(f"config key {where}.{extra[0]}: unknown key (known: {', '.join(MODEL_KEYS)})")
        if e["name"] in seen:
            raise UserError(f"config key {where}.name: '{e['name']}' appears twice")
        seen.add(e["name"])
        base = e.get("base", e["name"])
        if not isinstance(base, str):
            raise UserError(f"config key {where}.base: got {base!r}; allowed: a model in experiments/conf/model/")
        tp = e.get("tp", 1)
        Knob("int", 1, MAX_TP, help="GPUs per instance").check(f"{where}.tp", tp)
        check_tp(model_shape(base), int(tp), f"config key {where}.tp")


def check_tp(shape, tp: int, where: str, gpus_per_node: int | None = None) -> None:
    """A tensor-parallel degree the model can be split by: it divides the attention heads, and the
    KV heads divide it or it divides them (vLLM's rule); at most a node's GPUs when given."""
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise UserError(f"{where}: got {tp!r}; allowed: a positive integer")
    if shape.heads % tp:
        raise UserError(f"{where}: got {tp}; allowed: a divisor of {shape.name}'s {shape.heads} attention heads")
    if shape.kv_heads % tp and tp % shape.kv_heads:
        raise UserError(f"{where}: got {tp}; allowed: a divisor or multiple of {shape.name}'s "
                        f"{shape.kv_heads} KV heads")
    if gpus_per_node is not None and tp > gpus_per_node:
        raise UserError(f"{where}: got {tp}; allowed: at most {gpus_per_node}, the GPUs of one node "
                        "(a TP group cannot span nodes)")


def check_fit(models, cluster, engine, where: str = "config key models") -> None:
    """Every model must fit its TP group: weights plus KV for one full-length sequence per GPU."""
    from warmsim.sim.cluster import GIB
    for m in models.values():
        if m.tp > cluster.gpus_per_node:
            raise UserError(f"{where}: {m.name} has tp={m.tp} but a node has only "
                            f"{cluster.gpus_per_node} GPUs (a TP group cannot span nodes)")
        kv = -(-m.shape.max_model_len // engine.block_size) * engine.block_size * m.kv_bytes_per_token_per_gpu
        need = m.shard_bytes + kv
        if need > cluster.gpu_pool_bytes:
            raise UserError(f"{where}: {m.name} (tp={m.tp}) needs {need / GIB:.1f} GiB per GPU for "
                            f"weights and one {m.shape.max_model_len}-token sequence, but the pool has "
                            f"{cluster.gpu_pool_bytes / GIB:.1f} GiB (cluster.gpu_hbm_gib x memory_fraction)")


def check_mechanism_names(node: Any) -> None:
    """``system.mechanisms``: the memory switch is a name of the memory-switch table
    (``sim/memswitch/``). The policies check their own weight-source arguments against the
    weight-source table (``sim.cost.check_source``) when the builder makes them."""
    from warmsim.sim.memswitch import MEMSWITCHES
    if not isinstance(node, Mapping) or node.get("memswitch") is None:
        return
    name = node["memswitch"]
    if not isinstance(name, str) or name not in MEMSWITCHES:
        raise UserError(f"config key system.mechanisms.memswitch: got {name!r}; allowed: one of "
                        f"{', '.join(MEMSWITCHES)} (sim/memswitch/)")


def check_systems(v: Any, known: Sequence[str]) -> None:
    if isinstance(v, str) or not isinstance(v, Sequence) or not all(isinstance(s, str) for s in v):
        raise UserError(f"config key systems: got {v!r}; allowed: a list of system names, e.g. "
                        "[static,warmserve] (known: " + ", ".join(known) + ")")
    for s in v:
        if s not in known:
            raise UserError(f"unknown system '{s}' (config key systems / system; known: {', '.join(known)})")


def check_config(cfg) -> None:
    """Check the whole composed config (a DictConfig or a plain dict) against the schema. Top-level
    keys that config groups add (e.g. ``faults``, shipped or in a user config directory) are
    allowed; every other top-level key outside the schema is an error."""
    c = _plain(cfg)
    if not isinstance(c, Mapping):
        raise UserError("config: not a mapping")
    c = {k: v for k, v in c.items() if k != "hydra"}
    for k in REQUIRED_TOP:
        if k not in c:
            raise UserError(f"config key {k}: missing (removed by a `~{k}` override? every run needs it)")
    known_top = set(GROUPS) | set(TOP) | {"systems", "models", "workload", "cost", "system"}
    known_top |= _top_keys()
    known_top.discard("hydra")
    for k in c:
        if k not in known_top:
            raise UserError(f"config key {k}: unknown key (known: {', '.join(sorted(known_top))})")
        if isinstance(c[k], Mapping) and "_target_" in c[k]:  # e.g. +router=sllm: a policy no system reads
            raise UserError(f"config key {k}: a policy outside a system is used by none; swap a system's: "
                            f"{k}@system.{k}=NAME (the system group) or overrides.<system>.{k}=NAME (compare)")
    for k, knob in TOP.items():
        if k in c:
            knob.check(k, c[k])
    if not isinstance(c.get("system"), Mapping):
        raise UserError(f"config key system: got {c.get('system')!r}; allowed: a system config (a mapping with name, "
                        "router, autoscaler, ...; experiments/conf/system/)")
    check_mechanism_names(c["system"].get("mechanisms"))
    if "systems" in c:
        from warmsim.experiments.confpath import group_choices
        check_systems(c["systems"], group_choices("system"))
    for g, schema in GROUPS.items():
        if g in c:
            _check_group(g, c[g], schema)
    if "cost" in c:
        check_cost(c["cost"])
    if "models" in c:
        check_models(c["models"])
    if "workload" in c:
        wl = check_workload(c["workload"])
        warm = (c.get("metrics") or {}).get("warmup_s")
        dur = wl.get("duration_s", _workload_defaults()[wl["kind"]].get("duration_s"))
        if isinstance(warm, (int, float)) and isinstance(dur, (int, float)) and warm > 0 and warm >= dur:
            raise UserError(f"config key metrics.warmup_s: got {warm:g}; allowed: less than workload.duration_s "
                            f"({dur:g}), or no request is left to measure")
    cl = c.get("cluster")
    if isinstance(cl, Mapping) and isinstance(cl.get("nodes"), int) and isinstance(cl.get("gpus_per_node"), int):
        if cl["nodes"] * cl["gpus_per_node"] > 65536:
            raise UserError(f"config key cluster.nodes: {cl['nodes']} x {cl['gpus_per_node']} GPUs; allowed: "
                            "at most 65536 GPUs in all")
        for e in c.get("models") or []:
            tp = int(e.get("tp", 1))
            if tp > cl["gpus_per_node"]:
                raise UserError(f"config key models: {e['name']} has tp={tp} but a node has only "
                                f"{cl['gpus_per_node']} GPUs (a TP group cannot span nodes)")


def _top_keys() -> set[str]:
    """Top-level keys of config.yaml and the names of the config groups (shipped, and in the user
    config directories of experiments/confpath.py)."""
    import yaml

    from warmsim.experiments.confpath import groups, search_dirs
    keys = set(groups())
    for d in search_dirs():
        try:
            keys |= {str(k) for k in (yaml.safe_load((d / "config.yaml").read_text()) or {}) if k != "defaults"}
        except Exception:  # noqa: BLE001 - an unreadable (or absent) file adds no keys
            pass
    return keys
