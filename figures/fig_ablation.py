"""Ablation: WarmServe and its ablations, over all requests and over the requests that met an
instance start, in one or more regimes (the trace's arrivals, and bursty arrivals).

Input: summary.csv ``ALL`` rows (columns system, model, requests, ttft_under_fast, ttft_p99_s,
start_hit_ratio, start_requests, start_ttft_p99_s, start_ttft_fast) of WarmServe and its ablation
systems, one table per regime. Per regime (one row of panels):

1. share of requests with TTFT under ``fast_ttft_s``: all requests (solid bar) and the start-affected
   ones (hatched bar; requests whose start kind is not ``warm``). Values from a third-party summary
   of the paper (not verified, docs/warmserve.md section 8) are drawn as hollow diamonds; which of
   the two shares they correspond to is not known;
2. activations served by prewarmed weights / all activations (``start_hit_ratio``);
3. P99 TTFT of all requests (dot) and of the start-affected ones (bar), log scale, labelled with the
   number of start-affected requests.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from warmsim.experiments.claims import ABLATION_SHARES
from warmsim.figures import style

#: The paper's share with TTFT < 100 ms per system (the claims table's, experiments/claims.py).
PAPER_SHARES = ABLATION_SHARES
#: Columns the start panels read (older summaries lack them: those panels then say so).
START_COLUMNS = ("start_hit_ratio", "start_requests", "start_ttft_p99_s", "start_ttft_fast")


def _num(row, column: str) -> float:
    v = row.get(column, np.nan) if hasattr(row, "get") else np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _regime_numbers(allrows: pd.DataFrame, names: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for s in names:
        if s not in allrows.index:
            continue
        row = allrows.loc[s]
        out[s] = {"share_all": _num(row, "ttft_under_fast"), "share_start": _num(row, "start_ttft_fast"),
                  "hit_ratio": _num(row, "start_hit_ratio"), "start_requests": _num(row, "start_requests"),
                  "p99_all_s": _num(row, "ttft_p99_s"), "p99_start_s": _num(row, "start_ttft_p99_s"),
                  "requests": _num(row, "requests")}
    return out


def draw(summary: pd.DataFrame | Mapping[str, pd.DataFrame], out_path, *, systems: list[str] | None = None,
         fast_ttft_s: float = 0.1, failed: list[str] | None = None, title_extra: str = "") -> dict:
    """One row of three panels per regime (``summary``: one table, or ``{regime label: table}``);
    ``failed`` systems are listed as not run. Returns the numbers drawn (the first regime's
    all-requests share also as ``share_ttft_under_fast``)."""
    regimes = {"": summary} if isinstance(summary, pd.DataFrame) else dict(summary)
    tables = {k: v[v["model"] == "ALL"].set_index("system") for k, v in regimes.items()}
    present = [s for t in tables.values() for s in t.index]
    names = list(systems) if systems else style.order_systems(present)
    names = [s for s in names if s in present or s in (failed or [])]
    nrow = len(tables)
    fig, axes = style.new_figure(nrow, 3, width=13, height=nrow * (0.42 * len(names) + 1.4) + 0.9, sharey=True,
                                 gridspec_kw={"width_ratios": [3, 1.6, 2.4]}, squeeze=False)
    y = np.arange(len(names))[::-1]
    h = 0.38
    numbers: dict[str, dict] = {}
    labelled = False
    for (label, allrows), (a_share, a_hit, a_p99) in zip(tables.items(), axes):
        nums = numbers[label] = _regime_numbers(allrows, names)
        for yi, s in zip(y, names):
            color = style.system_color(s)
            if s not in nums:
                a_share.text(0.01, yi, "run failed or not run: no result", va="center", fontsize=8, color="#b00000")
            else:
                n = nums[s]
                a_share.barh(yi + h / 2, n["share_all"], height=h, color=color)
                a_share.text(min(n["share_all"], 1.0) + 0.01, yi + h / 2, f"{n['share_all']:.1%} all", va="center",
                             fontsize=7)
                if n["share_start"] == n["share_start"]:
                    a_share.barh(yi - h / 2, n["share_start"], height=h, color=color, alpha=0.45, hatch="///",
                                 edgecolor="black", linewidth=0.3)
                    a_share.text(min(n["share_start"], 1.0) + 0.01, yi - h / 2, f"{n['share_start']:.1%} of "
                                 f"{int(n['start_requests'])} start-affected", va="center", fontsize=7)
                else:
                    a_share.text(0.01, yi - h / 2, "no start-affected request", va="center", fontsize=7, color="#555555")
                if n["hit_ratio"] == n["hit_ratio"]:
                    a_hit.barh(yi, n["hit_ratio"], height=0.7, color=color)
                    a_hit.text(min(n["hit_ratio"], 1.0) + 0.02, yi, f"{n['hit_ratio']:.0%}", va="center", fontsize=7.5)
                else:
                    a_hit.text(0.02, yi, "no activation", va="center", fontsize=7, color="#555555")
                if n["p99_start_s"] == n["p99_start_s"]:
                    a_p99.barh(yi, n["p99_start_s"], height=0.7, color=color, alpha=0.8)
                    a_p99.text(n["p99_start_s"] * 1.08, yi, f"{n['p99_start_s']:.2f} s", va="center", fontsize=7)
                a_p99.plot([n["p99_all_s"]], [yi], marker="o", color="black", ms=4, ls="none",
                           label="all requests" if yi == y[0] else None)
            if s in PAPER_SHARES:
                a_share.scatter(PAPER_SHARES[s], yi, marker="D", facecolors="none", edgecolors="black", zorder=3,
                                label=None if labelled else "paper (third-party summary, unverified)")
                labelled = True
        a_share.set_yticks(y, [style.system_label(s) for s in names])
        a_share.set_xlim(0, 1.35)
        a_share.set_xticks(np.linspace(0, 1, 6))
        a_share.set_title(f"{label}: share with TTFT < {fast_ttft_s * 1000:g} ms" if label else
                          f"share with TTFT < {fast_ttft_s * 1000:g} ms", fontsize=9)
        a_hit.set_xlim(0, 1.25)
        a_hit.set_title("activations on prewarmed weights", fontsize=9)
        a_p99.set_xscale("log")
        a_p99.set_title("P99 TTFT (s): start-affected (bar), all (dot)", fontsize=9)
        vals = [v for n in nums.values() for v in (n["p99_all_s"], n["p99_start_s"]) if v == v and v > 0]
        if vals:
            a_p99.set_xlim(min(vals) / 2, max(vals) * 6)
    axes[-1][0].set_xlabel("share of requests (solid: all; hatched: those that met an instance start)")
    axes[-1][1].set_xlabel("start_hit_ratio")
    axes[-1][2].set_xlabel("seconds, log scale")
    handles = [h for ax in (axes[0][0], axes[0][2]) for h in ax.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, fontsize=7, loc="upper left")
    fig.suptitle(f"WarmServe ablations{title_extra}", fontsize=10)
    style.caption(fig, "Bars: simulated. Start-affected requests: routed to an instance that was still starting "
                       "(start kind not warm). Diamonds: values a third-party summary attributes to the paper "
                       "(docs/warmserve.md section 8; unverified; over which requests is not known).")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    style.save(fig, out_path)
    first = next(iter(numbers.values()), {})
    return {"share_ttft_under_fast": {s: n["share_all"] for s, n in first.items()},
            "regimes": numbers, "failed": list(failed or [])}
