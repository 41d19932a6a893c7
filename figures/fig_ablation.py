"""Ablation: share of requests with TTFT under 100 ms for WarmServe and its ablations.

Input: summary.csv ``ALL`` rows (columns system, model, requests, ttft_under_fast, ttft_p99_s) of
WarmServe and its ablation systems on one workload. Values from a third-party summary of the paper
(not verified, see docs/warmserve.md section 8) are drawn as hollow markers for comparison. A second
panel counts the requests at or above 100 ms, where small share differences become visible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.experiments.claims import ABLATION_SHARES
from warmsim.figures import style

#: The paper's share with TTFT < 100 ms per system (the claims table's, experiments/claims.py).
PAPER_SHARES = ABLATION_SHARES


def draw(summary: pd.DataFrame, out_path, *, systems: list[str] | None = None, fast_ttft_s: float = 0.1,
         failed: list[str] | None = None, title_extra: str = "") -> dict:
    """Bars of ``ttft_under_fast`` and of the slow-request count per system; ``failed`` systems are
    listed as not run."""
    allrows = summary[summary["model"] == "ALL"].set_index("system")
    names = list(systems) if systems else style.order_systems(allrows.index)
    names = [s for s in names if s in allrows.index or s in (failed or [])]
    fig, (ax, ax2) = style.new_figure(1, 2, width=11, height=0.45 * len(names) + 2.0, sharey=True,
                                      gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(names))[::-1]
    out, slow = {}, {}
    labelled = False
    for yi, s in zip(y, names):
        if s in allrows.index:
            row = allrows.loc[s]
            v = float(row["ttft_under_fast"])
            out[s] = v
            n_slow = int(round(float(row["requests"]) * (1 - v)))
            slow[s] = n_slow
            ax.barh(yi, v, color=style.system_color(s), height=0.7)
            ax.text(min(v, 1.0) + 0.01, yi, f"{v:.1%}", va="center", fontsize=8)
            ax2.barh(yi, n_slow, color=style.system_color(s), height=0.7)
            ax2.text(n_slow, yi, f" {n_slow}  (P99 {row['ttft_p99_s']:.2f} s)", va="center", fontsize=7.5)
        else:
            ax.text(0.01, yi, "run failed: no result", va="center", fontsize=8, color="#b00000")
        if s in PAPER_SHARES:
            ax.scatter(PAPER_SHARES[s], yi, marker="D", facecolors="none", edgecolors="black", zorder=3,
                       label=None if labelled else "paper (third-party summary, unverified)")
            labelled = True
    ax.set_yticks(y, [style.system_label(s) for s in names])
    ax.set_xlim(0, 1.15)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel(f"share of requests with TTFT < {fast_ttft_s * 1000:g} ms (all models)")
    ax.set_title("share of fast first tokens")
    if labelled:
        ax.legend(fontsize=7.5, loc="lower left")
    ax2.set_xlabel(f"requests with TTFT >= {fast_ttft_s * 1000:g} ms (count)")
    ax2.set_title("slow first tokens (label: count, P99 TTFT)")
    ax2.set_xlim(0, max(slow.values(), default=1) * 1.8 + 1)
    fig.suptitle(f"WarmServe ablations{title_extra}", fontsize=10)
    style.caption(fig, "Bars: simulated. Diamonds: values a third-party summary attributes to the paper "
                       "(docs/warmserve.md section 8; unverified).")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    style.save(fig, out_path)
    return {"share_ttft_under_fast": out, "requests_at_or_above_fast": slow, "failed": list(failed or [])}
