"""The WarmServe paper's workload recipe (arXiv 2512.09472, section 8) on the Azure 2024 week.

* total requests per hour = ``3600 * rps``; model j gets ``(j+1)^-alpha / sum`` of them (exact
  integer split by largest remainder);
* model j replays the hour ``[window_start_s, window_start_s + window_s)`` (default 00:00-01:00 UTC)
  of week day ``d_j = max(0, 7 - n_models) + j`` (0 = Monday .. 6 = Sunday; wraps modulo 7 beyond 7
  models), sampling that hour's requests uniformly without replacement, plus whole copies of the hour
  when more are needed;
* **week alignment**: day d is the calendar date in the file with that weekday. The coding file runs
  Fri 2024-05-10 .. Thu 05-16, so Mon..Thu = 05-13..05-16 and Fri..Sun = 05-10..05-12; the
  conversation file runs Sun 05-12 .. Sat 05-18, so Mon..Sat = 05-13..05-18 and Sun = 05-12;
* arrivals inside a 10 s count bin are uniform; token pairs are drawn from the 2023 file of the same
  service; prompts capped at 1024, outputs clipped to [3, 1023] (counted in meta); the client sends
  ``max(prompt - prompt_offset_tokens, 1)`` prompt tokens (the artifact's ``request_generator.py``
  ``run_requests``: ``max(input_tokens - 8, 1)`` words);
* ``burstiness_cv`` (the artifact's ``--burstiness``, ``trace_generator.py`` ``get_prewarm_placement``
  and ``apply_burstiness``): every model's sampled hour merged and sorted by time, the gaps
  redrawn i.i.d. from a Gamma with that CV and rescaled to keep the first-to-last span; the request
  order (so each position's model) is kept; the history is not touched; null = off;
* only the first ``duration_s`` seconds are sent;
* history (``history_days: null``, the artifact's ``get_prewarm_placement``): the same window on every
  week day from Monday up to the day before the replayed one (3, 4, 5, 6 days for models 0..3 of
  four; the week does not wrap); ``history_days: k`` takes the k previous days instead, wrapping
  round the week (cyclic, at most 6). Each history day is sampled with the same fraction of that
  day's hour as the replayed day (so day-to-day level changes are kept).

Four independent random streams (spawned from the seed) draw the replayed arrivals, their token
lengths, the history and the burstiness, so that a history or burstiness knob never changes the
other draws (the history is the same with and without burstiness, the requests the same under any
history setting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from warmsim.sim.errors import UserError
from warmsim.traces import azure, registry
from warmsim.traces.assemble import (
    CAP_DEFAULTS,
    apply_burstiness,
    cap_tokens,
    caps_from,
    finish,
    power_law_shares,
    split_counts,
)
from warmsim.traces.knobs import Knobs
from warmsim.traces.tokens import sample_pairs
from warmsim.traces.workload import Workload

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_S = 86400.0

#: The traces kind ``warmserve`` replays (the Azure 2024 week, the recipe's source).
TRACES = ("conv", "code", "azure2024_conv", "azure2024_code")

DEFAULTS = {
    "trace": "conv",  # conv | code: which Azure 2024 week trace
    "rps": 10.0,  # total request rate over the replayed hour; total requests = 3600 * rps
    "alpha": 2.0,  # popularity exponent: model j share (j+1)^-alpha / sum
    "duration_s": 1200.0,  # only the first duration_s seconds are sent
    "window_start_s": 0.0,  # replayed window start, seconds after 00:00 UTC
    "window_s": 3600.0,  # replayed window length (the paper's hour)
    "burstiness_cv": None,  # null = the trace's arrivals; else re-time the merged hour to gaps with this CV
    "history_days": None,  # null = every day from Monday to the day before (the artifact); k = k previous days, cyclic
    "prompt_offset_tokens": 8,  # prompts sent as max(prompt - this, 1) tokens (the artifact's client)
    "history_window_s": None,  # history window length (null = window_s)
    "tokens_from": None,  # token-length trace (null = the 2023 file of the same service)
    **CAP_DEFAULTS,
    "max_prompt_tokens": 1024,
    "min_output_tokens": 3,
    "max_output_tokens": 1023,
}


def _day_offset(weekday: int, start_weekday: int) -> int:
    """Days from the file's first day to the date with ``weekday``."""
    return (weekday - start_weekday) % 7


def history_days(day: int, previous: int | None) -> list[int]:
    """The week days (0 = Monday) of the history of a model replaying ``day``, oldest first:
    ``previous`` None, the artifact's (``get_prewarm_placement``: ``for day in range(my_day)``): every
    day from Monday up to the day before, no wrap; else the ``previous`` days before it, wrapping round
    the week (at most 6)."""
    if previous is None:
        return list(range(day))
    return [(day - back) % 7 for back in range(min(previous, 6), 0, -1)]


def _hour_arrivals(counts, lo_s: float, hi_s: float, rng: np.random.Generator) -> np.ndarray:
    """All arrivals of ``[lo_s, hi_s)`` (sorted), uniform inside each bin."""
    b = azure.bins_in_window(counts, lo_s, hi_s)
    t = azure.arrivals_in_bins(b["lo_s"].to_numpy(), b["hi_s"].to_numpy(), b["count"].to_numpy(), rng)
    return t[(t >= lo_s) & (t < hi_s)] - lo_s


def _sample(t: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``n`` of the arrivals ``t`` uniformly: whole copies, then a sample without replacement."""
    if t.shape[0] == 0:
        if n:
            raise UserError("workload.window_start_s: the replayed window has no requests in the trace")
        return t, 0
    copies, rest = divmod(n, t.shape[0])
    pick = rng.choice(t.shape[0], size=rest, replace=False)
    return np.sort(np.concatenate([np.tile(t, copies), t[pick]])), copies


def build(cfg: Mapping, models: Sequence[str], rng: np.random.Generator) -> Workload:
    """Build the WarmServe workload (see the module docstring); ``models[j]`` is model j."""
    k = Knobs(cfg, DEFAULTS)
    trace = k.raw("trace")
    if trace not in TRACES:
        raise UserError(f"workload.trace: got {trace!r}; kind warmserve (the paper's recipe, the default workload) "
                        f"replays only the Azure 2024 week: {', '.join(TRACES)}. Any trace name or file replays with "
                        f"workload=mapped_azure_conv workload.trace={trace} (split over the models by popularity) or "
                        f"workload=trace workload.trace={trace} (its own model column); traces/README.md")
    trace = trace if trace.startswith("azure2024_") else f"azure2024_{trace}"
    rps = k.number("rps", lo=0, lo_open=True)
    alpha = k.number("alpha", lo=0)
    duration = k.number("duration_s", lo=0, lo_open=True)
    window_start = k.number("window_start_s", lo=0)
    window = k.number("window_s", lo=0, lo_open=True)
    if window_start + window > DAY_S:
        raise UserError(f"workload.window_s: window {window_start:g}+{window:g} s runs past the end of the day")
    if duration > window:
        raise UserError(f"workload.duration_s: {duration:g} s is longer than the replayed window ({window:g} s)")
    cv = k.number("burstiness_cv", lo=0, optional=True)
    want_hist = k.integer("history_days", lo=0, optional=True)
    offset = k.integer("prompt_offset_tokens", lo=0)
    if want_hist is not None and want_hist > 6:  # the week holds 6 other days of the replayed weekday's window
        raise UserError(f"workload.history_days: got {want_hist}; allowed: 0 to 6 (the other days of the trace's "
                        "one week), or null for the artifact's days")
    hist_window = k.number("history_window_s", lo=0, lo_open=True, optional=True) or window
    if window_start + hist_window > DAY_S:
        raise UserError("workload.history_window_s: history window runs past the end of the day")
    max_p, min_o, max_o = caps_from(k)

    spec = registry.resolve(trace)
    counts = registry.load_counts(spec)
    tokens = registry.load_requests_file(registry.resolve(k.text("tokens_from", optional=True) or spec.tokens_from))
    start = counts.attrs["start_time"]
    start_wd = int(start.weekday())

    n = len(models)
    if n == 0:
        raise UserError("workload: no models to serve")
    if want_hist is None and n >= 7:
        raise UserError(f"workload.history_days: null (the artifact's history, every day from Monday before the "
                        f"replayed one) needs at most 6 models: with {n}, model 0 replays Monday and has no earlier "
                        "day (the artifact refuses too); give a number of previous days")
    rng_req, rng_len, rng_hist, rng_burst = rng.spawn(4)
    shares = power_law_shares(n, alpha)
    per_hour = split_counts(int(round(3600 * rps)), shares)

    def window_of(weekday: int, length: float) -> tuple[float, float]:
        lo = _day_offset(weekday, start_wd) * DAY_S + window_start
        return lo, lo + length

    arrivals, model_idx, prompts, outputs = [], [], [], []
    history: dict[str, list[np.ndarray]] = {}
    per_model_meta = []
    cap_stats = {"prompt_raised_to_1": 0, "prompt_capped": 0, "output_raised_to_min": 0, "output_capped": 0,
                 "prompt_offset_to_1": 0}

    def lengths(count: int) -> None:
        p, o = sample_pairs(tokens, count, rng_len)
        p, o, st = cap_tokens(p, o, max_p, min_o, max_o)
        for key in st:
            cap_stats[key] += st[key]
        cap_stats["prompt_offset_to_1"] += int((p <= offset).sum()) if offset else 0
        p = np.maximum(p - offset, 1)
        prompts.append(p)
        outputs.append(o)

    for j, name in enumerate(models):
        day = (max(0, 7 - n) + j) % 7
        lo, hi = window_of(day, window)
        hour = _hour_arrivals(counts, lo, hi, rng_req)
        t, copies = _sample(hour, int(per_hour[j]), rng_req)
        fraction = per_hour[j] / hour.shape[0] if hour.shape[0] else 0.0
        if cv is None:
            t = t[t < duration]
            lengths(t.shape[0])
        arrivals.append(t)  # with burstiness: the whole sampled hour, re-timed and cut below
        model_idx.append(np.full(t.shape[0], j, dtype=np.int32))
        hist, hist_dates = [], []
        for hday in history_days(day, want_hist):
            hlo, hhi = window_of(hday, hist_window)
            ht = _hour_arrivals(counts, hlo, hhi, rng_hist)
            hn = int(round(fraction * ht.shape[0]))
            ht, _ = _sample(ht, hn, rng_hist)
            _, ho = sample_pairs(tokens, ht.shape[0], rng_hist)
            _, ho, _ = cap_tokens(np.ones_like(ho), ho, None, min_o, max_o)
            hist.append(np.column_stack([ht, ho.astype(np.float64)]))
            hist_dates.append(str((start + np.timedelta64(int(hlo), "s")).date()))
        history[name] = hist
        per_model_meta.append({
            "model": name, "weekday": WEEKDAYS[day], "date": str((start + np.timedelta64(int(lo), "s")).date()),
            "window_requests_in_trace": int(hour.shape[0]), "window_requests_sampled": int(per_hour[j]),
            "whole_copies": int(copies), "sent": int(t.shape[0]), "history_dates": hist_dates,
        })
    if cv is not None:
        arrivals, model_idx = _bursty(np.concatenate(arrivals), np.concatenate(model_idx), cv, duration, rng_burst)
        for j, m in enumerate(per_model_meta):
            m["sent"] = int(np.count_nonzero(model_idx[0] == j))
        lengths(arrivals[0].shape[0])  # every model draws from the same length file: one draw in merged order
    meta = {
        "kind": "warmserve", "trace": trace, "knobs": k.as_dict(), "shares": shares.tolist(),
        "week_alignment": "weekday d (0=Mon) -> the file's date with that weekday",
        "history_days_used": [len(m["history_dates"]) for m in per_model_meta],
        "tokens_from": tokens.attrs.get("source"),
        "token_caps": cap_stats, "dropped_rows": 0, "per_model": per_model_meta,
        "notes": [f"prompts sent as max(prompt - {offset}, 1) tokens, as the artifact's client sends them "
                  "(workload.prompt_offset_tokens)"] if offset else [],
        "not_sent_after_duration": int(per_hour.sum()) - sum(m["sent"] for m in per_model_meta),
    }
    return finish(np.concatenate(arrivals), np.concatenate(model_idx), np.concatenate(prompts),
                  np.concatenate(outputs), models, duration, history, meta)


def _bursty(t: np.ndarray, model: np.ndarray, cv: float, duration: float,
            rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every model's sampled hour merged, sorted by time (stable: model order on ties, as the
    artifact's ``sorted`` of the concatenated lists), re-timed by :func:`apply_burstiness` and cut at
    ``duration``; returned as one-element lists (arrivals, model) in that merged order."""
    order = np.argsort(t, kind="stable")
    t, model = apply_burstiness(t[order], cv, rng), model[order]
    keep = t < duration
    return [t[keep]], [model[keep]]
