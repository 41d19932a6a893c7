"""A per-request trace replayed with its own request-to-model mapping (the ``model`` column).

Each trace model name goes to the served model of the same name, or to the one ``model_map`` names
(``{trace name: served name}``; several trace names may share a served model). A trace model that
maps to nothing is an error naming it (``unmapped: drop`` drops its requests instead, counted in
meta). The window ``[start_s, start_s + duration_s * time_scale)`` is compressed by ``time_scale``;
``duration_s: null`` (the default) replays the whole trace, and a user file shorter than
``duration_s`` is replayed whole (noted). Token lengths come with the requests (caps counted), and
so do a Mooncake trace's prompt-block ids (``hash_ids``; a capped prompt keeps the ids of its first
tokens, which still name its prefix).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from warmsim.sim.errors import UserError
from warmsim.traces.assemble import CAP_DEFAULTS, cap_tokens, caps_from, finish, trace_window
from warmsim.traces.knobs import Knobs
from warmsim.traces.prefix import from_trace
from warmsim.traces.workload import Workload

DEFAULTS = {
    "trace": "azure2023_conv",  # registry name or path of a per-request trace with a model column/field
    "model_map": None,  # {trace model name: served model name}; null = by name
    "unmapped": "error",  # error | drop: requests whose trace model maps to no served model
    "start_s": 0.0,  # window start in trace seconds
    "duration_s": None,  # workload length in seconds (after time compression); null = the whole trace
    "time_scale": 1.0,  # compression: duration_s * time_scale trace seconds are replayed in duration_s
    "sort": False,  # sort a user file with backward timestamps instead of failing
    **CAP_DEFAULTS,
}


def build(cfg: Mapping, models: Sequence[str], rng: np.random.Generator) -> Workload:
    """Build a trace-mapping workload (see the module docstring)."""
    k = Knobs(cfg, DEFAULTS)
    name = k.text("trace")
    start = k.number("start_s", lo=0)
    duration = k.number("duration_s", lo=0, lo_open=True, optional=True)
    time_scale = k.number("time_scale", lo=0, lo_open=True)
    unmapped = k.choice("unmapped", ("error", "drop"))
    table = k.raw("model_map") or {}
    if not isinstance(table, Mapping):
        raise UserError(f"workload.model_map: want a mapping {{trace model: served model}}, got {table!r}")
    bad = [v for v in table.values() if v not in models]
    if bad:
        raise UserError(f"workload.model_map: {bad[0]!r} is not a served model (models: {', '.join(models)})")
    max_p, min_o, max_o = caps_from(k)
    df, duration, notes = trace_window(name, start, duration, time_scale, bool(k.raw("sort")), rng)
    index = {m: j for j, m in enumerate(models)}
    trace_models = df["model"].astype(str).to_numpy()
    names, inverse = np.unique(trace_models, return_inverse=True)
    target = np.array([index.get(str(table.get(n, n)), -1) for n in names], dtype=np.int64)
    missing = [str(n) for n, j in zip(names, target) if j < 0]
    per_name = {str(n): int(c) for n, c in zip(names, np.bincount(inverse, minlength=len(names)))}
    if missing and unmapped == "error":
        raise UserError(f"workload: trace model(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                        f"of {name} map to no served model (models: {', '.join(models)}); add them to "
                        "workload.model_map (trace name: served name), or unmapped: drop")
    model = target[inverse] if len(df) else np.empty(0, dtype=np.int64)
    keep = model >= 0
    dropped = int((~keep).sum())
    if dropped:
        notes.append(f"{dropped} request(s) of trace model(s) {', '.join(missing)} dropped (unmapped: drop)")
    t = (df["arrival_s"].to_numpy()[keep] - start) / time_scale
    t = np.minimum(t, np.nextafter(duration, 0))
    prompt = df["prompt_tokens"].to_numpy()[keep]
    output = df["output_tokens"].to_numpy()[keep]
    prompt, output, stats = cap_tokens(prompt, output, max_p, min_o, max_o)
    served = set(int(j) for j in target if j >= 0)
    idle = [m for j, m in enumerate(models) if j not in served]
    if idle:
        notes.append(f"served model(s) with no trace model mapped to them (no requests): {', '.join(idle)}")
    meta = {"kind": "trace", "trace": name, "knobs": k.as_dict(), "trace_models": per_name,
            "mapping": {str(n): (models[j] if j >= 0 else None) for n, j in zip(names, target)},
            "trace_requests_in_window": int(len(df)), "token_caps": stats, "dropped_rows": dropped,
            "source": df.attrs.get("source"), "notes": notes}
    prefix = from_trace(df, np.flatnonzero(keep))
    return finish(t, model[keep], prompt, output, models, duration, {}, meta, prefix)
