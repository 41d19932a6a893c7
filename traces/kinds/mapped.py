"""One single-service trace split onto N models by a power law.

The trace window ``[start_s, start_s + duration_s * time_scale)`` (trace seconds) is compressed by
``time_scale`` into ``[0, duration_s)``. ``rate_scale`` < 1 keeps each request with that probability;
> 1 adds ``floor(rate_scale) - 1`` copies of the window, each circularly shifted by a uniform random
offset, plus one more copy thinned to the fractional part. Each request then goes to model j with
probability ``(j+1)^-alpha / sum`` (``split: request``), or each conversation does (``split:
conversation``, for traces with ``hash_ids``: requests whose prompts share their first two blocks are
one conversation and stay with one model; a prompt of one block is a conversation of its own). Token
lengths come with the requests (caps counted in meta), and so do a Mooncake trace's prompt-block ids
(``hash_ids``; a copy of a request has the same ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from warmsim.sim.errors import UserError
from warmsim.traces.assemble import CAP_DEFAULTS, cap_tokens, caps_from, finish, power_law_shares, trace_window
from warmsim.traces.knobs import Knobs
from warmsim.traces.prefix import conversations, from_trace
from warmsim.traces.workload import Workload

DEFAULTS = {
    "trace": "azure2023_conv",  # registry name or path of a per-request trace (CSV Azure-2023 style, JSONL)
    "alpha": 2.0,  # popularity exponent: model j share (j+1)^-alpha / sum
    "start_s": 0.0,  # window start in trace seconds
    "duration_s": 1200.0,  # workload length in seconds (after time compression); null = the whole trace
    "time_scale": 1.0,  # compression: duration_s * time_scale trace seconds are replayed in duration_s
    "rate_scale": 1.0,  # <1 thins, >1 replicates (shifted copies) the requests
    # request: each request drawn on its own; conversation: one draw per conversation (needs hash_ids)
    "split": "request",
    "sort": False,  # sort a user file with backward timestamps instead of failing
    **CAP_DEFAULTS,
}


def _replicate(t: np.ndarray, rate_scale: float, duration: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """Thinned / replicated arrivals and, for each, the index of the source request."""
    n = t.shape[0]
    idx = np.arange(n)
    whole = int(np.floor(rate_scale))
    frac = rate_scale - whole
    times, srcs = [], []
    for c in range(whole):
        shift = 0.0 if c == 0 else rng.uniform(0.0, duration)
        times.append((t + shift) % duration)
        srcs.append(idx)
    if frac > 0:
        keep = rng.random(n) < frac
        shift = 0.0 if whole == 0 else rng.uniform(0.0, duration)
        times.append((t[keep] + shift) % duration)
        srcs.append(idx[keep])
    return np.concatenate(times), np.concatenate(srcs)


def build(cfg: Mapping, models: Sequence[str], rng: np.random.Generator) -> Workload:
    """Build a mapped workload (see the module docstring)."""
    k = Knobs(cfg, DEFAULTS)
    name = k.text("trace")
    alpha = k.number("alpha", lo=0)
    start = k.number("start_s", lo=0)
    duration = k.number("duration_s", lo=0, lo_open=True, optional=True)
    time_scale = k.number("time_scale", lo=0, lo_open=True)
    rate_scale = k.number("rate_scale", lo=0, lo_open=True)
    split = k.choice("split", ("request", "conversation"))
    max_p, min_o, max_o = caps_from(k)
    df, duration, notes = trace_window(name, start, duration, time_scale, bool(k.raw("sort")), rng)
    names = df["model"].astype(str).unique() if len(df) else []
    if len(names) > 1:
        notes.append(f"the trace's model column ({len(names)} names) is not used: kind 'mapped' re-splits the "
                     "requests by the power law (workload=trace replays the trace's own mapping)")
    t = (df["arrival_s"].to_numpy() - start) / time_scale
    t = np.minimum(t, np.nextafter(duration, 0))
    t, src = _replicate(t, rate_scale, duration, rng)
    shares = power_law_shares(len(models), alpha)
    if split == "request":
        model = rng.choice(len(models), size=t.shape[0], p=shares)
    else:
        group = conversations(df)
        if group is None:
            raise UserError(f"workload.split: conversation needs a trace with hash_ids; {name} has none")
        model = rng.choice(len(models), size=int(group.max(initial=-1)) + 1, p=shares)[group[src]]
    prompt = df["prompt_tokens"].to_numpy()[src]
    output = df["output_tokens"].to_numpy()[src]
    prompt, output, stats = cap_tokens(prompt, output, max_p, min_o, max_o)
    meta = {"kind": "mapped", "trace": name, "knobs": k.as_dict(), "shares": shares.tolist(),
            "trace_requests_in_window": int(len(df)), "token_caps": stats, "dropped_rows": 0,
            "source": df.attrs.get("source"), "notes": notes}
    return finish(t, model, prompt, output, models, duration, {}, meta, from_trace(df, src))
