"""TTFT distribution per system: empirical CDF over every request (log x).

Input: requests.parquet rows (columns system, ttft_s, status). Dropped requests have no first token:
they are counted in the denominator, so a system's curve tops out below 1 by its dropped share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.figures import style


def draw(requests: pd.DataFrame, out_path, *, fast_ttft_s: float = 0.1, slo_ttft_s: float | None = 1.0,
         title_extra: str = "") -> dict:
    """One CDF line per system; returns each system's share of requests under ``fast_ttft_s``."""
    fig, ax = style.new_figure(width=8, height=4.8)
    out = {}
    for s in style.order_systems(requests["system"]):
        r = requests[requests["system"] == s]
        done = (r["status"].astype(str) == "completed").to_numpy()
        t = np.sort(r["ttft_s"].to_numpy()[done])
        n = len(r)
        if n == 0:
            continue
        y = np.arange(1, len(t) + 1) / n
        drop = 1 - len(t) / n
        out[s] = float((t < fast_ttft_s).sum() / n)
        lab = style.system_label(s) + (f" ({drop:.1%} dropped)" if drop > 0 else "")
        ls = style.system_line(s)["linestyle"]
        ax.step(np.maximum(t, 1e-4), y, where="post", color=style.system_color(s), ls=ls, label=lab, lw=1.6)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.axvline(fast_ttft_s, color="k", ls=":", lw=1)
    ax.text(fast_ttft_s, 0.03, f" {fast_ttft_s * 1000:g} ms", fontsize=7.5)
    if slo_ttft_s:
        ax.axvline(slo_ttft_s, color="k", ls="--", lw=1)
        ax.text(slo_ttft_s, 0.03, f" SLO {slo_ttft_s:g} s", fontsize=7.5)
    ax.set_xlabel("TTFT (s, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"TTFT CDF per system{title_extra}")
    ax.legend(loc="lower right", fontsize=8)
    inset = ax.inset_axes([0.08, 0.45, 0.38, 0.4])
    for s in style.order_systems(requests["system"]):
        r = requests[requests["system"] == s]
        done = (r["status"].astype(str) == "completed").to_numpy()
        t = np.sort(r["ttft_s"].to_numpy()[done])
        if len(r):
            inset.step(np.maximum(t, 1e-4), np.arange(1, len(t) + 1) / len(r), where="post",
                       color=style.system_color(s), ls=style.system_line(s)["linestyle"], lw=1.3)
    inset.set_xscale("log")
    inset.set_ylim(0.95, 1.001)
    inset.set_title("tail (fraction >= 0.95)", fontsize=7.5)
    inset.tick_params(labelsize=7)
    style.caption(fig, "Completed requests only on the curve; dropped requests lower its top. "
                       "Dotted: 100 ms (paper's 'fast' threshold); dashed: TTFT SLO.")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    style.save(fig, out_path)
    return {"share_ttft_under_fast": out}
