"""Load sweep: P99 TTFT and SLO attainment vs total request rate; the max rate each system serves.

Input: summary.csv ``ALL`` rows of one run per (system, rate), with a ``rps`` column (the
``workload.rps`` of the run). Each system's capacity is given as a bracket, [largest passing rate,
first failing rate above it), and WarmServe/MuxServe as the interval of ratios the two brackets allow
(:mod:`warmsim.experiments.capacity`). Paper: WarmServe serves up to 2.5x more requests than MuxServe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from warmsim.experiments.capacity import CRITERIA, brackets, criterion_text, interval_text, meets, ratio_interval
from warmsim.figures import style

__all__ = ["CRITERIA", "PAPER_FACTOR", "criterion_text", "draw", "fails_below", "max_rps", "meets"]

#: The paper's claim: WarmServe serves up to this many times more requests than MuxServe.
PAPER_FACTOR = 2.5


def max_rps(sweep: pd.DataFrame, criterion: str = "slo", p99_limit_s: float = 1.0,
            slo_min: float = 0.99) -> dict[str, float]:
    """Per system, the largest swept rate at which it meets the criterion (0: at none).

    A system may fail at a low rate and pass at a higher one (ServerlessLLM with keep-alive 0 cold-starts
    more when requests are sparse; MuxServe's caps are sized to the rate it was planned for): those lower
    failures are listed by :func:`fails_below`, not hidden by the maximum."""
    return {s: b.largest_pass for s, b in brackets(sweep, criterion, p99_limit_s, slo_min).items()}


def fails_below(sweep: pd.DataFrame, best: dict[str, float], criterion: str = "slo", p99_limit_s: float = 1.0,
                slo_min: float = 0.99) -> dict[str, list[float]]:
    """Per system, the swept rates below ``best[system]`` at which it does not meet the criterion."""
    allrows = sweep[sweep["model"] == "ALL"].sort_values("rps")
    return {s: [float(row["rps"]) for _, row in g.iterrows()
                if float(row["rps"]) < best.get(s, 0.0) and not meets(row, criterion, p99_limit_s, slo_min)]
            for s, g in allrows.groupby("system", sort=False)}


def draw(sweep: pd.DataFrame, out_path, *, criterion: str = "slo", p99_limit_s: float = 1.0,
         slo_min: float = 0.99, slo_ttft_s: float | None = None, alpha: float | None = None,
         title_extra: str = "") -> dict:
    """Two panels (P99 TTFT, SLO attainment vs rate); the legend gives each system's capacity bracket."""
    allrows = sweep[sweep["model"] == "ALL"].sort_values("rps")
    br = brackets(sweep, criterion, p99_limit_s, slo_min)
    rates = sorted(allrows["rps"].unique())
    fig, (a1, a2) = style.new_figure(1, 2, width=11, height=4.8)
    for s in style.order_systems(allrows["system"]):
        g = allrows[allrows["system"] == s]
        b = br[s]
        lab = f"{style.system_label(s)}: {b.text()}"
        if b.fails_below:
            lab += f" (fails at {', '.join(f'{r:g}' for r in b.fails_below)})"
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
    a2.legend(fontsize=8, loc="lower left",
              title=f"capacity [largest passing, first failing) with {criterion_text(criterion, p99_limit_s, slo_min)}",
              title_fontsize=7.5)
    fig.suptitle(f"Max request rate served{title_extra}", fontsize=11)
    interval = None
    if "warmserve" in br and "muxserve" in br:
        lo, hi, point = ratio_interval(br["warmserve"], br["muxserve"])
        interval = {"low": lo, "high": hi, "largest_pass_ratio": point}
        ratio_text = (f"{interval_text(lo, hi)} = [largest passing WarmServe / first failing MuxServe, first failing "
                      f"WarmServe / largest passing MuxServe]; largest passing rates alone: "
                      + (f"{point:.2f}x" if point == point else "n/a"))
    else:
        ratio_text = "n/a (WarmServe or MuxServe not swept)"
    slo = f" (SLO: TTFT <= {slo_ttft_s:g} s and TPOT bound)" if slo_ttft_s else ""
    steps = np.diff(rates)
    style.caption(fig, f"Capacity: largest swept rate meeting {criterion_text(criterion, p99_limit_s, slo_min)}{slo} and the "
                       f"first failing rate above it; lower rates where a system fails are listed. Dashed lines: the "
                       f"thresholds. WarmServe/MuxServe capacity ratio: {ratio_text} (paper: up to {PAPER_FACTOR}x)."
                       + (f" alpha {alpha:g}." if alpha is not None else "")
                       + f" Swept rates: {', '.join(f'{r:g}' for r in rates)}"
                       + (f" (largest step {steps.max():g} req/s)." if len(steps) else ".")
                       + (f" Means over {int(allrows['seeds'].max())} seeds, bars: 95% CI."
                          if "seeds" in allrows and allrows["seeds"].max() > 1 else ""))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    style.save(fig, out_path)
    point = interval["largest_pass_ratio"] if interval else float("nan")
    return {"criterion": criterion_text(criterion, p99_limit_s, slo_min), "alpha": alpha,
            "max_rps": {s: b.largest_pass for s, b in br.items()},
            "first_fail_rps": {s: b.first_fail for s, b in br.items()},
            "fails_below": {s: list(b.fails_below) for s, b in br.items()}, "rates": rates,
            "warmserve_over_muxserve": point if point == point else None,
            "warmserve_over_muxserve_interval": [interval["low"], interval["high"]] if interval else None,
            "paper_factor": PAPER_FACTOR}
