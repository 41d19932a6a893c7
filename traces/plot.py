"""A PNG of a trace window: arrival rate over time per model, and token-length histograms."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from warmsim.traces import registry, servegen  # noqa: E402
from warmsim.traces.describe import check_bins  # noqa: E402


def _hist(ax, tokens, title: str) -> None:
    for col in ("prompt_tokens", "output_tokens"):
        x = np.maximum(tokens[col].to_numpy(), 1)
        bins = np.logspace(0, np.log10(max(x.max(), 10)), 60)
        ax.hist(x, bins=bins, histtype="step", label=col)
    ax.set_xscale("log")
    ax.set_xlabel("tokens")
    ax.set_ylabel("requests")
    ax.set_title(title)
    ax.legend()


def plot(name_or_path: str, out: str | Path, start_s: float = 0.0, duration_s: float | None = None,
         bin_s: float | None = None, sort: bool = False, seed: int = 0) -> Path:
    """Write the PNG for a trace window to ``out`` and return its path.

    Per-request traces: requests per ``bin_s`` (default span/300) per model. Count traces: the
    10-second counts directly (as req/s). Rate traces: the aggregate and the top clients' rates.
    """
    spec = registry.resolve(name_or_path)
    fig, (ax_rate, ax_tok) = plt.subplots(2, 1, figsize=(11, 8))
    hours = lambda s: np.asarray(s) / 3600.0  # noqa: E731
    if spec.kind == "requests":
        df = registry.load_trace(name_or_path, start_s=start_s, duration_s=duration_s, sort=sort)
        lo = start_s
        hi = start_s + duration_s if duration_s is not None else float(df["arrival_s"].max()) + 1e-9
        width = bin_s or max((hi - lo) / 300, 1.0)
        check_bins(lo, hi, width)
        edges = np.arange(lo, hi + width, width)
        for m, g in df.groupby("model"):
            h = np.histogram(g["arrival_s"], bins=edges)[0] / width
            ax_rate.step(hours(edges[:-1]), h, where="post", label=str(m), lw=0.8)
        ax_rate.set_title(f"{spec.name}: arrival rate ({width:g} s bins)")
        tokens, tok_title = df, "token lengths (from the trace)"
    elif spec.kind == "counts":
        counts = registry.load_counts(spec)
        hi = registry.check_window(spec.name, counts.attrs["span_s"], start_s, duration_s)
        lab = counts["bin_s"].to_numpy()
        sel = (lab >= start_s) & (lab < hi)
        rate = counts["count"].to_numpy()[sel] / counts.attrs["bin_s"]
        ax_rate.plot(hours(lab[sel]), rate, lw=0.3, label=f"{spec.service} (10 s counts)")
        if bin_s:
            k = max(1, int(bin_s / counts.attrs["bin_s"]))
            smooth = np.convolve(rate, np.ones(k) / k, mode="same")
            ax_rate.plot(hours(lab[sel]), smooth, lw=1.2, label=f"mean over {bin_s:g} s")
        ax_rate.set_title(f"{spec.name}: requests per second, from {counts.attrs['start_time']} UTC")
        tokens = registry.load_requests_file(registry.resolve(spec.tokens_from))
        tok_title = f"token lengths (sampled from {spec.tokens_from}; the trace has none)"
    else:
        table = registry.load_rates(spec)
        hi = registry.check_window(spec.name, table.attrs["span_s"], start_s, duration_s)
        rows = servegen.windows_in_range(table, start_s, hi)
        agg = servegen.aggregate_rate(rows)
        ax_rate.step(hours(agg.index), agg.to_numpy(), where="post", label="all clients", lw=1.2)
        top = rows.groupby("client")["rate"].sum().nlargest(5).index
        for c in top:
            s = rows.loc[rows["client"] == c]
            ax_rate.step(hours(s["window_start_s"]), s["rate"], where="post", lw=0.6, label=f"client {c}")
        ax_rate.set_title(f"{spec.name}: recorded rate per {table.attrs['window_s']:g} s window")
        tokens = registry.load_requests_file(registry.resolve(spec.tokens_from))
        tok_title = f"token lengths used when generating (from {spec.tokens_from})"
    ax_rate.set_xlabel("hours from trace start")
    ax_rate.set_ylabel("requests / s")
    ax_rate.legend(fontsize=7, ncol=3)
    _hist(ax_tok, tokens, tok_title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
