"""Load sweep: P99 TTFT and SLO attainment vs total request rate; the max rate each system serves.

Input: summary.csv ``ALL`` rows of one run per (system, rate), with a ``rps`` column (the
``workload.rps`` of the run). Paper: WarmServe serves up to 2.5x more requests than MuxServe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.figures import style

#: The paper's claim: WarmServe serves up to this many times more requests than MuxServe.
PAPER_FACTOR = 2.5
#: Criteria a rate must meet to count as "served" (``--criterion``).
CRITERIA = ("slo", "p99")


def meets(row, criterion: str, p99_limit_s: float, slo_min: float) -> bool:
    """Whether one ``ALL`` summary row meets the criterion."""
    if criterion == "p99":
        return bool(row["ttft_p99_s"] <= p99_limit_s)
    return bool(row["slo_attainment"] >= slo_min)


def criterion_text(criterion: str, p99_limit_s: float, slo_min: float) -> str:
    """Human-readable criterion."""
    return f"P99 TTFT <= {p99_limit_s:g} s" if criterion == "p99" else f"SLO attainment >= {slo_min:g}"


def max_rps(sweep: pd.DataFrame, criterion: str = "slo", p99_limit_s: float = 1.0,
            slo_min: float = 0.99) -> dict[str, float]:
    """Per system, the largest swept rate at which it meets the criterion (0: at none).

    A system may fail at a low rate and pass at a higher one (ServerlessLLM with keep-alive 0 cold-starts
    more when requests are sparse; MuxServe's caps are sized to the mean rate): those lower failures are
    listed by :func:`fails_below`, not hidden by the maximum."""
    out = {}
    allrows = sweep[sweep["model"] == "ALL"].sort_values("rps")
    for s, g in allrows.groupby("system", sort=False):
        ok = [float(row["rps"]) for _, row in g.iterrows() if meets(row, criterion, p99_limit_s, slo_min)]
        out[s] = max(ok) if ok else 0.0
    return out


def fails_below(sweep: pd.DataFrame, best: dict[str, float], criterion: str = "slo", p99_limit_s: float = 1.0,
                slo_min: float = 0.99) -> dict[str, list[float]]:
    """Per system, the swept rates below its maximum at which it does not meet the criterion."""
    allrows = sweep[sweep["model"] == "ALL"].sort_values("rps")
    return {s: [float(row["rps"]) for _, row in g.iterrows()
                if float(row["rps"]) < best.get(s, 0.0) and not meets(row, criterion, p99_limit_s, slo_min)]
            for s, g in allrows.groupby("system", sort=False)}


def draw(sweep: pd.DataFrame, out_path, *, criterion: str = "slo", p99_limit_s: float = 1.0,
         slo_min: float = 0.99, slo_ttft_s: float | None = None, title_extra: str = "") -> dict:
    """Two panels (P99 TTFT, SLO attainment vs rate); the legend gives each system's max rate."""
    allrows = sweep[sweep["model"] == "ALL"].sort_values("rps")
    best = max_rps(sweep, criterion, p99_limit_s, slo_min)
    below = fails_below(sweep, best, criterion, p99_limit_s, slo_min)
    rates = sorted(allrows["rps"].unique())
    fig, (a1, a2) = style.new_figure(1, 2, width=11, height=4.6)
    top = rates[-1]
    for s in style.order_systems(allrows["system"]):
        g = allrows[allrows["system"] == s]
        b = best.get(s, 0.0)
        if b <= 0:
            lab = f"{style.system_label(s)}: < {rates[0]:g} req/s"
        else:
            lab = f"{style.system_label(s)}: {'>= ' if b >= top else ''}{b:g} req/s"
            if below.get(s):
                lab += f" (fails at {', '.join(f'{r:g}' for r in below[s])})"
        kw = dict(style.system_line(s), ms=4.5, lw=1.6, alpha=0.9)
        if "ttft_p99_s_ci" in g and g["ttft_p99_s_ci"].notna().any():  # several seeds: mean and 95% CI
            a1.errorbar(g["rps"], g["ttft_p99_s"], yerr=g["ttft_p99_s_ci"].fillna(0.0), capsize=3, label=lab, **kw)
            a2.errorbar(g["rps"], g["slo_attainment"], yerr=g["slo_attainment_ci"].fillna(0.0), capsize=3,
                        label=lab, **kw)
        else:
            a1.plot(g["rps"], g["ttft_p99_s"], label=lab, **kw)
            a2.plot(g["rps"], g["slo_attainment"], label=lab, **kw)
    a1.set_yscale("log")
    a1.axhline(p99_limit_s, color="k", ls="--", lw=1)
    a1.set_xlabel("total request rate (req/s)")
    a1.set_ylabel("P99 TTFT, all models (s, log scale)")
    a1.set_title("P99 TTFT vs load")
    a2.axhline(slo_min, color="k", ls="--", lw=1)
    a2.set_xlabel("total request rate (req/s)")
    a2.set_ylabel("SLO attainment (fraction of requests)")
    a2.set_ylim(max(0.0, min(0.9, float(np.nanmin(allrows["slo_attainment"])) - 0.02)), 1.005)
    a2.set_title("SLO attainment vs load")
    a2.legend(fontsize=8, loc="lower left", title=f"max rate with {criterion_text(criterion, p99_limit_s, slo_min)}",
              title_fontsize=8)
    fig.suptitle(f"Max request rate served{title_extra}", fontsize=11)
    ws, mx = best.get("warmserve", np.nan), best.get("muxserve", np.nan)
    ratio = ws / mx if mx and mx > 0 else float("nan")
    bound = " (lower bound: WarmServe met it at the highest rate)" if ws >= top and ratio == ratio else ""
    slo = f" (SLO: TTFT <= {slo_ttft_s:g} s and TPOT bound)" if slo_ttft_s else ""
    ratio_text = f"{ratio:.2f}x{bound}" if ratio == ratio else "n/a (a system met the criterion at no swept rate or was not swept)"
    style.caption(fig, f"Max rate: the largest swept rate meeting {criterion_text(criterion, p99_limit_s, slo_min)}{slo}; "
                       f"lower rates where a system fails are listed. Dashed lines: the thresholds. WarmServe/MuxServe "
                       f"max-rate ratio: {ratio_text} (paper: up to {PAPER_FACTOR}x). Swept rates: "
                       f"{', '.join(f'{r:g}' for r in rates)}."
                       + (f" Means over {int(allrows['seeds'].max())} seeds, bars: 95% CI."
                          if "seeds" in allrows and allrows["seeds"].max() > 1 else ""))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    style.save(fig, out_path)
    return {"criterion": criterion_text(criterion, p99_limit_s, slo_min), "max_rps": best, "fails_below": below,
            "rates": rates, "warmserve_over_muxserve": ratio if ratio == ratio else None, "paper_factor": PAPER_FACTOR}
