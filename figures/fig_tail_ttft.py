"""Headline comparison: P99 and P90 TTFT per model per system (log scale).

Input: summary.csv rows of one run (columns system, model, ttft_p90_s, ttft_p99_s).
Paper (WarmServe, arXiv 2512.09472): up to 50.8x lower tail TTFT than ServerlessLLM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.figures import style

#: The paper's headline claim: WarmServe's tail TTFT is up to this many times lower than ServerlessLLM's.
PAPER_RATIO = 50.8


def ratios(summary: pd.DataFrame, reference: str = "sllm", target: str = "warmserve") -> dict[str, float]:
    """Per model (and ALL): P99 TTFT of ``reference`` divided by that of ``target``."""
    p = summary.pivot_table(index="model", columns="system", values="ttft_p99_s", aggfunc="first")
    if reference not in p or target not in p:
        return {}
    return {m: float(p.loc[m, reference] / p.loc[m, target]) for m in p.index
            if np.isfinite(p.loc[m, reference]) and p.loc[m, target] > 0}


def draw(summary: pd.DataFrame, out_path, *, reference: str = "sllm", target: str = "warmserve",
         title_extra: str = "") -> dict:
    """Grouped bars of P99 TTFT (P90 as a black tick) per model and system; returns the key numbers."""
    systems = style.order_systems(summary["system"])
    models = style.model_order(summary["model"])
    fig, ax = style.new_figure(width=9, height=5)
    w = 0.8 / max(len(systems), 1)
    x = np.arange(len(models))
    for i, s in enumerate(systems):
        rows = summary[summary["system"] == s].set_index("model").reindex(models)
        xs = x - 0.4 + w * (i + 0.5)
        ax.bar(xs, rows["ttft_p99_s"], w * 0.92, color=style.system_color(s), label=f"{style.system_label(s)} P99")
        ax.scatter(xs, rows["ttft_p90_s"], marker="_", s=120, color="black", zorder=3,
                   label="P90" if i == 0 else None)
    ax.set_yscale("log")
    ax.set_xticks(x, models)
    ax.set_xlabel("model (ALL = every request)")
    ax.set_ylabel("TTFT (s, log scale)")
    r = ratios(summary, reference, target)
    for j, m in enumerate(models):
        if m in r:
            top = summary[summary["model"] == m]["ttft_p99_s"].max()
            ax.annotate(f"{style.system_label(reference)}/{style.system_label(target)}\nP99 x{r[m]:.1f}",
                        (x[j], top), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=7.5)
    ax.set_ylim(top=summary["ttft_p99_s"].max() * 8)
    ax.set_title(f"Tail TTFT per model{title_extra}")
    ax.legend(fontsize=7.5, ncol=3, loc="upper left")
    best = max(r.values()) if r else float("nan")
    style.caption(fig, f"Bars: P99 TTFT; ticks: P90. Dropped requests count as the unfinished TTFT. "
                       f"Simulated max {style.system_label(reference)}/{style.system_label(target)} "
                       f"P99 ratio over models: x{best:.1f}; paper: up to x{PAPER_RATIO} lower tail TTFT than "
                       "ServerlessLLM.")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    style.save(fig, out_path)
    p99 = summary.pivot_table(index="system", columns="model", values="ttft_p99_s", aggfunc="first")
    return {"p99_ttft_s": {s: {m: float(v) for m, v in p99.loc[s].items()} for s in p99.index},
            f"p99_ratio_{reference}_over_{target}": r, "paper_ratio": PAPER_RATIO}
