"""Cost vs latency: mean GPUs holding an instance against P99 TTFT, per system (and per rate).

Input: summary.csv ``ALL`` rows (columns system, model, mean_gpus_busy, gpu_hours, ttft_p99_s),
optionally from several request rates (a ``rps`` column): each system is then a line through its
rates, labelled with the rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.figures import style


def draw(summary: pd.DataFrame, out_path, *, highlight_rps: float | None = None, title_extra: str = "") -> dict:
    """Scatter (or lines over rates) of mean GPUs busy vs P99 TTFT; ``highlight_rps`` gets big markers."""
    allrows = summary[summary["model"] == "ALL"].copy()
    if "rps" not in allrows:
        allrows["rps"] = np.nan
    fig, ax = style.new_figure(width=8.5, height=5)
    out = {}
    for s in style.order_systems(allrows["system"]):
        g = allrows[allrows["system"] == s].sort_values("rps")
        c = style.system_color(s)
        ax.plot(g["mean_gpus_busy"], g["ttft_p99_s"], **style.system_line(s), ms=4, lw=1.2, label=style.system_label(s))
        for _, r in g.iterrows():
            if r["rps"] == r["rps"] and len(g) > 1:
                ax.annotate(f"{r['rps']:g}", (r["mean_gpus_busy"], r["ttft_p99_s"]), xytext=(3, 3),
                            textcoords="offset points", fontsize=6.5, color=c)
        h = g[g["rps"] == highlight_rps] if highlight_rps is not None and len(g) > 1 else g.iloc[:1] if len(g) == 1 else g.iloc[:0]
        if len(h):
            ax.scatter(h["mean_gpus_busy"], h["ttft_p99_s"], s=110, color=c, edgecolor="black", zorder=4)
            out[s] = {"mean_gpus_busy": float(h["mean_gpus_busy"].iloc[0]), "gpu_hours": float(h["gpu_hours"].iloc[0]),
                      "ttft_p99_s": float(h["ttft_p99_s"].iloc[0])}
    ax.set_yscale("log")
    ax.set_xlabel("mean GPUs holding an instance (GPUs)")
    ax.set_ylabel("P99 TTFT, all models (s, log scale)")
    ax.set_title(f"GPU cost vs tail latency{title_extra}")
    ax.legend(fontsize=8)
    rates = sorted(x for x in allrows["rps"].unique() if x == x)
    note = (f"Each line: one system over request rates (labels, req/s); big markers: {highlight_rps:g} req/s. "
            if len(rates) > 1 and highlight_rps is not None else "")
    style.caption(fig, note + "Lower-left is better. GPUs busy = time-averaged GPUs with an instance (starting or "
                              "serving), not counting GPUs holding only prewarmed weights.")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    style.save(fig, out_path)
    return {"at_highlight": out}
