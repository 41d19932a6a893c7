"""Per-(system, model) summary rows from one run's tables (the ``summary.csv`` contract)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.sim.recorder import COMPLETED, DROPPED

#: Columns of summary.csv, in order (architecture.md "Contracts", plus the GPU cost next to latency).
COLUMNS = ["system", "model", "requests", "completed", "dropped", "ttft_p50_s", "ttft_p90_s", "ttft_p95_s",
           "ttft_p99_s", "ttft_mean_s", "tpot_mean_s", "slo_attainment", "ttft_under_fast", "throughput_rps",
           "cold_starts", "prewarm_hits", "prewarm_hits_loading", "requests_cold_start", "evictions", "prewarms",
           "instance_starts", "start_hit_ratio", "start_requests", "start_ttft_p99_s", "start_ttft_fast", "preemptions", "gpus_visible", "mean_gpus_busy", "gpu_hours", "pred_acc_avg", "pred_acc_peak",
           "pred_windows", "profile", "profile_measured", "prefix_hit_ratio"]


def prefix_hit_ratio(r: pd.DataFrame) -> float:
    """Prompt tokens served from the prefix cache / prompt tokens, over the requests of ``r`` that got
    a first token (their first prefill's hit; 0 without prefix caching); NaN when none did."""
    if "cached_tokens" not in r:
        return np.nan
    served = np.isfinite(r["first_token_s"].to_numpy(dtype=float))
    prompt = r["prompt_tokens"].to_numpy()[served].sum()
    return float(r["cached_tokens"].to_numpy()[served].sum() / prompt) if prompt else np.nan


def prediction_accuracy(log: list[tuple]) -> dict[str, tuple[float, float]]:
    """Per model and pooled (key ``ALL``): 1 - mean relative error of (avg, peak) predictions,
    scored by :class:`warmsim.policies.warmserve.PredictionAccuracy` (rules in its docstring)."""
    from warmsim.policies.warmserve.predictor import PredictionAccuracy
    acc = PredictionAccuracy()
    for model, _w, p_avg, p_peak, o_avg, o_peak in log:
        acc.record(model, (p_avg, p_peak), (o_avg, o_peak))
    out = {m: acc.report(m) for m in acc.models()}
    if out:
        out["ALL"] = acc.report()
    return {m: (r.accuracy_avg, r.accuracy_peak) for m, r in out.items()}


def summarize(system: str, req: pd.DataFrame, counters: dict, *, duration_s: float, end_s: float,
              gpu_seconds: float, prediction_log: list, slo_ttft_s: float, slo_tpot_s: float,
              unfinished_ttft_s: float, fast_ttft_s: float, profile: str, measured: bool,
              models: list[str], warmup_s: float = 0.0,
              prediction_window_s: float | None = None, gpus_visible: int | None = None) -> pd.DataFrame:
    """One row per model plus ``ALL``. Dropped requests count with ``unfinished_ttft_s`` in TTFT stats.

    Requests arriving before ``warmup_s`` are left out of the request statistics (counts, TTFT,
    TPOT, SLO, throughput); event counters and GPU-hours cover the whole run.

    ``pred_windows`` counts the prediction windows that closed within the run (per model; ``ALL``:
    distinct windows), 0 when the window is longer than the run; blank for a system without a
    predictor (``prediction_window_s`` None and an empty log). ``gpus_visible``: the GPUs the system
    could use (a system may see only some nodes, e.g. MuxServe on one).

    Instance starts (:func:`start_columns`): ``start_hit_ratio`` = activations that adopted a
    prewarmed replica / all activations, an activation being an instance start that was not ready
    at t = 0 (event counters: whole run); ``start_requests`` = requests whose start kind is not
    ``warm`` (they were routed to an instance before it was active), and ``start_ttft_p99_s`` /
    ``start_ttft_fast`` their P99 TTFT and share with TTFT under ``fast_ttft_s`` (request
    statistics: warm-up honoured, dropped requests at ``unfinished_ttft_s``). Empty (NaN), never
    0 or 1, when there was no activation or no such request."""
    acc = prediction_accuracy(prediction_log)
    has_pred = prediction_window_s is not None or bool(prediction_log)
    rows = []
    status = req["status"].cat.codes.to_numpy() if hasattr(req["status"], "cat") else req["status"].to_numpy()
    measured_window = (req["arrival_s"] >= warmup_s).to_numpy()
    span = end_s - min(warmup_s, end_s)
    for name in models + ["ALL"]:
        sel = measured_window if name == "ALL" else measured_window & (req["model"] == name).to_numpy()
        r = req[sel]
        st = status[sel]
        done = st == COMPLETED
        ttft = np.where(done, r["ttft_s"].to_numpy(), unfinished_ttft_s)
        out = r["output_tokens"].to_numpy()
        tpot = ((r["finish_s"] - r["first_token_s"]) / np.maximum(out - 1, 1)).to_numpy()
        tpot = tpot[done & (out > 1)]
        ok = done & (r["ttft_s"].to_numpy() <= slo_ttft_s)
        ok_tpot = np.ones_like(ok)
        ok_tpot[done] = ((r["finish_s"] - r["first_token_s"]) / np.maximum(out - 1, 1)).to_numpy()[done] <= slo_tpot_s
        c = {k: sum(counters[m][k] for m in models) for k in counters[models[0]]} if name == "ALL" else counters[name]
        pa = acc.get(name, (np.nan, np.nan))
        n = len(r)
        started = (r["start_kind"] != "warm").to_numpy()
        q = np.percentile(ttft, [50, 90, 95, 99]) if n else [np.nan] * 4
        rows.append({
            "system": system, "model": name, "requests": n, "completed": int(done.sum()),
            "dropped": int((st == DROPPED).sum()),
            "ttft_p50_s": q[0], "ttft_p90_s": q[1], "ttft_p95_s": q[2], "ttft_p99_s": q[3],
            "ttft_mean_s": float(ttft.mean()) if n else np.nan,
            "tpot_mean_s": float(tpot.mean()) if len(tpot) else np.nan,
            "slo_attainment": float((ok & ok_tpot).mean()) if n else np.nan,
            "ttft_under_fast": float((done & (r["ttft_s"].to_numpy() < fast_ttft_s)).mean()) if n else np.nan,
            "throughput_rps": float(done.sum() / span) if span > 0 else np.nan,
            "cold_starts": c["cold_starts"], "prewarm_hits": c["prewarm_hits"],
            "prewarm_hits_loading": c["prewarm_hits_loading"],
            "requests_cold_start": int((r["start_kind"] == "cold").sum()),
            "evictions": c["evictions"], "prewarms": c["prewarms"], "instance_starts": c["instance_starts"],
            **start_columns(c, ttft[started], done[started], fast_ttft_s),
            "preemptions": int(r["preemptions"].sum()),
            "gpus_visible": gpus_visible,
            "mean_gpus_busy": gpu_seconds / end_s if (name == "ALL" and end_s > 0) else np.nan,
            "gpu_hours": gpu_seconds / 3600 if name == "ALL" else np.nan,
            "pred_acc_avg": pa[0], "pred_acc_peak": pa[1],
            "pred_windows": len({e[1] for e in prediction_log if name == "ALL" or e[0] == name}) if has_pred else np.nan,
            "profile": profile, "profile_measured": measured,
            "prefix_hit_ratio": prefix_hit_ratio(r),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def start_columns(counters: dict, ttft: np.ndarray, done: np.ndarray, fast_ttft_s: float) -> dict:
    """The start-affected columns of one summary row (see :func:`summarize`).

    ``counters``: the run's event counters of the row (``instance_starts`` counts every activation,
    ``prewarm_hits`` and ``prewarm_hits_loading`` those that adopted a prewarmed replica, ready or
    still loading: both start with kind ``prewarmed``); ``ttft``/``done``: the TTFT (dropped ones
    already at the unfinished value) and completion of the row's requests whose start kind is not
    ``warm``."""
    starts = counters["instance_starts"]
    hits = counters["prewarm_hits"] + counters["prewarm_hits_loading"]
    n = len(ttft)
    return {
        "start_hit_ratio": hits / starts if starts else np.nan,
        "start_requests": n,
        "start_ttft_p99_s": float(np.percentile(ttft, 99)) if n else np.nan,
        "start_ttft_fast": float((done & (ttft < fast_ttft_s)).mean()) if n else np.nan,
    }
