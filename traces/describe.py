"""Summaries of a trace window: per model/service counts, span, rates and token statistics.

Count traces (Azure 2024) are summarised from their bins without generating requests; rate traces
(ServeGen) from their per-client rates. Both report where their token lengths would come from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.traces import registry, servegen
from warmsim.traces.registry import TraceSpec


def _token_stats(x: np.ndarray, prefix: str) -> dict[str, float]:
    if x.shape[0] == 0:
        return {f"{prefix}_{k}": np.nan for k in ("mean", "p50", "p99", "max")}
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_p50": float(np.percentile(x, 50)),
            f"{prefix}_p99": float(np.percentile(x, 99)), f"{prefix}_max": float(x.max())}


#: Most rate bins a window may be cut into (``--bin``): 80 MB of bin edges.
MAX_BINS = 10_000_000


def check_bins(lo: float, hi: float, bin_s: float) -> None:
    """A one-line UserError when ``[lo, hi)`` in ``bin_s`` bins makes more than :data:`MAX_BINS` bins."""
    n = (hi - lo) / bin_s
    if n > MAX_BINS:
        raise UserError(f"--bin: {bin_s:g} s bins over a {hi - lo:.6g} s window make {n:.3g} bins; allowed: at most "
                        f"{MAX_BINS:.0e} (give a larger --bin or a shorter --duration)")


def _peak(t: np.ndarray, lo: float, hi: float, bin_s: float) -> float:
    if t.shape[0] == 0:
        return 0.0
    check_bins(lo, hi, bin_s)
    edges = np.arange(lo, hi + bin_s, bin_s)
    return float(np.histogram(t, bins=edges)[0].max() / bin_s)


def describe_requests(df: pd.DataFrame, lo: float, hi: float, bin_s: float) -> pd.DataFrame:
    """One row per model plus ``ALL`` for a canonical request table covering ``[lo, hi)``."""
    rows = []
    groups = [(m, g) for m, g in df.groupby("model", sort=True)] + [("ALL", df)]
    for m, g in groups:
        t = g["arrival_s"].to_numpy()
        p = g["prompt_tokens"].to_numpy()
        o = g["output_tokens"].to_numpy()
        row = {"model": m, "requests": len(g), "first_s": float(t.min()) if len(t) else np.nan,
               "last_s": float(t.max()) if len(t) else np.nan, "mean_rps": len(g) / (hi - lo),
               f"peak_rps_{bin_s:g}s": _peak(t, lo, hi, bin_s)}
        row |= _token_stats(p, "prompt") | _token_stats(o, "output")
        row["zero_token_rows"] = int(((p < 1) | (o < 1)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def describe_counts(counts: pd.DataFrame, spec: TraceSpec, lo: float, hi: float, bin_s: float) -> pd.DataFrame:
    """Summary of a count trace's window, from the bins (arrivals of a bin counted at its label)."""
    lab = counts["bin_s"].to_numpy()
    sel = (lab >= lo) & (lab < hi)
    c = counts["count"].to_numpy()[sel]
    width = counts.attrs["bin_s"]
    k = max(1, int(round(bin_s / width)))
    peak = np.add.reduceat(c, np.arange(0, c.shape[0], k)).max() / (k * width) if c.shape[0] else 0.0
    tokens = registry.load_requests_file(registry.resolve(spec.tokens_from))
    row = {"model": spec.service, "requests": int(c.sum()), "first_s": float(lab[sel].min()),
           "last_s": float(lab[sel].max()), "mean_rps": float(c.sum() / (hi - lo)), f"peak_rps_{k * width:g}s": float(peak),
           "bins": int(sel.sum())}
    row |= _token_stats(tokens["prompt_tokens"].to_numpy(), "prompt") | _token_stats(tokens["output_tokens"].to_numpy(), "output")
    row["tokens_from"] = spec.tokens_from
    return pd.DataFrame([row])


def describe_rates(table: pd.DataFrame, spec: TraceSpec, lo: float, hi: float) -> pd.DataFrame:
    """Summary of a ServeGen model's window: expected requests and aggregate rates, from the rates."""
    rows = servegen.windows_in_range(table, lo, hi)
    agg = servegen.aggregate_rate(rows)
    w = table.attrs["window_s"]
    ws = agg.index.to_numpy(np.float64)
    overlap = np.minimum(ws + w, hi) - np.maximum(ws, lo)
    active = rows.loc[rows["pattern"] != ""]
    return pd.DataFrame([{
        "model": spec.service, "clients": int(table["client"].nunique()), "windows": int(agg.shape[0]),
        "expected_requests": float((agg.to_numpy() * overlap).sum()), "mean_rps": float((agg.to_numpy() * overlap).sum() / (hi - lo)),
        f"peak_rps_{w:g}s": float(agg.max()) if len(agg) else 0.0, "min_rps": float(agg.min()) if len(agg) else 0.0,
        "active_client_windows": int(len(active)), "median_cv": float(active["cv"].median()) if len(active) else np.nan,
        "tokens_from": f"{spec.tokens_from} (when generating requests)",
    }])


def describe(name_or_path: str, start_s: float = 0.0, duration_s: float | None = None, bin_s: float = 60.0,
             sort: bool = False) -> tuple[pd.DataFrame, dict]:
    """The summary table of a trace window and a dict of notes (kind, window, source, dropped rows)."""
    spec = registry.resolve(name_or_path)
    notes = {"trace": spec.name, "kind": spec.kind, "description": spec.description}
    if spec.kind == "requests":
        full = registry.load_requests_file(spec, sort=sort)
        span = float(full["arrival_s"].iloc[-1]) + 1e-9
        hi = registry.check_window(spec.name, span, start_s, duration_s)
        df = registry.load_trace(name_or_path, start_s=start_s, duration_s=duration_s, sort=sort)
        notes |= {"window_s": (start_s, hi), "rows_in_file": len(full), "rows_outside_window": len(full) - len(df),
                  "dropped_rows": 0, "start_time": str(full.attrs.get("start_time"))}
        return describe_requests(df, start_s, hi, bin_s), notes
    if spec.kind == "counts":
        counts = registry.load_counts(spec)
        hi = registry.check_window(spec.name, counts.attrs["span_s"], start_s, duration_s)
        notes |= {"window_s": (start_s, hi), "start_time": str(counts.attrs["start_time"]) + " UTC",
                  "tokens": f"not in the trace; sampled from {spec.tokens_from}", "dropped_rows": 0}
        return describe_counts(counts, spec, start_s, hi, bin_s), notes
    table = registry.load_rates(spec)
    hi = registry.check_window(spec.name, table.attrs["span_s"], start_s, duration_s)
    notes |= {"window_s": (start_s, hi), "dropped_rows": 0,
              "tokens": f"not shipped for language models; sampled from {spec.tokens_from}"}
    return describe_rates(table, spec, start_s, hi), notes
