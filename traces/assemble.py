"""Pieces every workload builder shares: popularity shares, token caps, and the final Workload."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from warmsim.sim.errors import UserError
from warmsim.traces.workload import PrefixBlocks, Workload

CAP_DEFAULTS = {
    "max_prompt_tokens": None,  # cap prompt lengths at this (null = no cap); counted in meta
    "min_output_tokens": 1,  # raise shorter outputs to this; counted in meta
    "max_output_tokens": None,  # cap output lengths at this (null = no cap); counted in meta
}


def power_law_shares(n: int, alpha: float) -> np.ndarray:
    """Model j's share ``(j+1)^-alpha / sum_k (k+1)^-alpha`` for j = 0..n-1."""
    w = np.arange(1, n + 1, dtype=np.float64) ** (-alpha)
    return w / w.sum()


def split_counts(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` in proportion to ``shares`` (largest remainder)."""
    exact = total * shares
    counts = np.floor(exact).astype(np.int64)
    rest = total - int(counts.sum())
    if rest > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return counts


def cap_tokens(
    prompt: np.ndarray, output: np.ndarray, max_prompt: int | None, min_output: int, max_output: int | None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Clip token lengths (prompt to ``[1, max_prompt]``, output to ``[min_output, max_output]``).

    Returns the clipped arrays and how many requests each rule changed (nothing is dropped).
    """
    if max_output is not None and max_output < min_output:
        raise UserError(f"workload.max_output_tokens: {max_output} is below min_output_tokens {min_output}")
    stats = {
        "prompt_raised_to_1": int((prompt < 1).sum()),
        "prompt_capped": int((prompt > max_prompt).sum()) if max_prompt is not None else 0,
        "output_raised_to_min": int((output < min_output).sum()),
        "output_capped": int((output > max_output).sum()) if max_output is not None else 0,
    }
    prompt = np.clip(prompt, 1, max_prompt if max_prompt is not None else None)
    output = np.clip(output, max(1, min_output), max_output if max_output is not None else None)
    return prompt, output, stats


def caps_from(knobs) -> tuple[int | None, int, int | None]:
    """The three cap knobs (see ``CAP_DEFAULTS``)."""
    return (knobs.integer("max_prompt_tokens", lo=1, optional=True), knobs.integer("min_output_tokens", lo=1),
            knobs.integer("max_output_tokens", lo=1, optional=True))


#: Below this coefficient of variation the gaps are made equal instead of drawn (the artifact's
#: ``cv < 1e-6`` branch in ``trace-generator/trace_generator.py`` ``apply_burstiness``).
REGULAR_CV = 1e-6


def apply_burstiness(arrival_s: np.ndarray, cv: float, rng: np.random.Generator) -> np.ndarray:
    """Arrivals ``arrival_s`` (sorted) re-timed so that their gaps have coefficient of variation ``cv``,
    as the artifact's ``apply_burstiness`` (``trace-generator/trace_generator.py``) does: the first
    and last arrivals stay; the ``n - 1`` gaps are i.i.d. Gamma(shape ``1/cv^2``, scale
    ``mean_gap * cv^2``), rescaled to add up to the first-to-last span; ``cv`` below
    :data:`REGULAR_CV` gives equal gaps. Fewer than two arrivals, or a zero span, are returned as
    they are. The i-th arrival stays the i-th: whatever rides on the order (model, lengths) is kept."""
    t = np.asarray(arrival_s, dtype=np.float64)
    n = t.shape[0]
    span = float(t[-1] - t[0]) if n else 0.0
    if n < 2 or span <= 0:
        return t.copy()
    if cv < REGULAR_CV:
        return np.linspace(t[0], t[-1], n)
    gaps = rng.gamma(1.0 / (cv * cv), span / (n - 1) * cv * cv, size=n - 1)
    gaps *= span / gaps.sum()
    out = np.empty(n)
    out[0] = t[0]
    out[1:] = t[0] + np.cumsum(gaps)
    return out


def finish(
    arrival_s: np.ndarray,
    model: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    models: Sequence[str],
    duration_s: float,
    history: Mapping[str, list[np.ndarray]] | None,
    meta: dict,
    prefix: PrefixBlocks | None = None,
) -> Workload:
    """Sort by arrival (stable), cast the columns, validate and return the :class:`Workload`
    (``prefix``: the requests' prompt-block ids in the same order as the columns, or None)."""
    order = np.argsort(arrival_s, kind="stable")
    wl = Workload(
        arrival_s=np.ascontiguousarray(arrival_s[order], dtype=np.float64),
        model=np.ascontiguousarray(model[order], dtype=np.int32),
        prompt_tokens=np.ascontiguousarray(prompt[order], dtype=np.int32),
        output_tokens=np.ascontiguousarray(output[order], dtype=np.int32),
        models=tuple(models),
        duration_s=float(duration_s),
        history=dict(history or {}),
        meta=meta,
        prefix=None if prefix is None else prefix.take(order),
    )
    per = np.bincount(wl.model, minlength=len(models))
    meta.setdefault("requests", len(wl))
    meta.setdefault("requests_per_model", {m: int(c) for m, c in zip(models, per)})
    wl.validate()
    return wl


def trace_window(name: str, start_s: float, duration_s: float | None, time_scale: float, sort: bool,
                 rng: np.random.Generator):
    """A per-request trace's window ``[start_s, start_s + duration_s * time_scale)`` and the output
    duration, with notes on what was changed.

    ``duration_s=None`` replays the whole trace from ``start_s``; a user file (a path, not a shipped
    name) shorter than the window is replayed whole instead of failing (both noted). Returns
    ``(table, duration_s, notes)``; the table's ``attrs`` keep the loader's (``ignored_columns``)."""
    from warmsim.traces import registry

    notes: list[str] = []
    spec = registry.resolve(name)
    user_file = spec.name not in registry.trace_names()
    whole = None
    if spec.kind == "requests" and (duration_s is None or user_file):
        whole = registry.load_requests_file(spec, sort=sort)
        span = registry.requests_span(whole)
        if start_s >= span:
            registry.check_window(spec.name, span, start_s, None)  # the one-line error
        left = (span - start_s) / time_scale
        if duration_s is None:
            duration_s = left
            notes.append(f"duration_s=null: the whole trace from start_s={start_s:g} s is replayed ({left:.0f} s)")
        elif duration_s > left + 1e-9:
            notes.append(f"trace {name} has only {left:.0f} s after start_s={start_s:g} s, less than "
                         f"duration_s={duration_s:g}: it is replayed whole ({left:.0f} s)")
            duration_s = left
    elif duration_s is None:
        raise UserError(f"workload.duration_s: null (the whole trace) needs a per-request trace; {name} is a "
                        f"{spec.kind} trace: give a duration")
    if whole is not None:  # already loaded: cut the window from it instead of reading the file again
        df = registry.requests_window(whole, spec.name, start_s, duration_s * time_scale)
    else:
        df = registry.load_trace(name, start_s=start_s, duration_s=duration_s * time_scale, seed=rng, sort=sort)
    ignored = list(df.attrs.get("ignored_columns") or [])
    if ignored:
        notes.append(f"columns of {name} not used: {', '.join(ignored)}")
    return df, float(duration_s), notes
