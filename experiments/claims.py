"""The paper's headline claims beside this run's numbers (the "Paper claims" table of report.md).

Each claim carries the paper's number, where it comes from (``[P]`` the paper's text, ``[S]`` a
third-party summary that ``docs/warmserve.md`` marks unverified), how warmsim computes its own number
from a ``summary.csv`` table, and one line on what is known to separate the two. A claim whose systems
are not in the run, or that needs a sweep (capacity), says so instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from warmsim.experiments.capacity import interval_text

#: Ablation systems and the paper's share of requests with TTFT < 100 ms for each [S].
ABLATION_SHARES = {"warmserve": 1.00, "warmserve_disable_prewarm": 0.15, "warmserve_no_placement": 0.29,
                   "warmserve_no_kv_reserve": 0.88, "warmserve_window3": 0.46, "warmserve_window40": 0.30}


@dataclass(frozen=True)
class Claim:
    """One claim: its text, the paper's value, and how to read warmsim's value off a summary."""

    name: str
    paper: float
    unit: str  # "x", "s" or "share"
    tag: str  # [P] paper text, [S] unverified summary
    measure: Callable[[pd.DataFrame], tuple]  # -> (value, how it was computed[, (low, high) interval])
    gap: str  # what is known to separate warmsim from the paper on this claim
    #: Measured on a rate sweep (``ALL`` rows with an ``rps`` column) when :func:`claims_table` has one.
    uses_sweep: bool = False


def _all(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary.model == "ALL"].set_index("system")


def _p99(summary: pd.DataFrame, system: str) -> float | None:
    a = _all(summary)
    return float(a.loc[system, "ttft_p99_s"]) if system in a.index else None


def _tail_vs_sllm(summary: pd.DataFrame) -> tuple[float | None, str]:
    per = summary[summary.model != "ALL"].pivot(index="model", columns="system", values="ttft_p99_s")
    if not {"sllm", "warmserve"} <= set(per.columns):
        return None, "needs systems sllm and warmserve in the run"
    ratio = (per["sllm"] / per["warmserve"]).dropna()
    if not len(ratio):
        return None, "no model served by both"
    best = ratio.idxmax()
    allr = _p99(summary, "sllm") / _p99(summary, "warmserve")
    return float(ratio.max()), f"max over models of sllm/warmserve P99 ({best}); all models together {allr:.2f}x"


def _p99_of(system: str) -> Callable[[pd.DataFrame], tuple[float | None, str]]:
    def measure(summary: pd.DataFrame) -> tuple[float | None, str]:
        v = _p99(summary, system)
        return (v, f"P99 TTFT of {system}, all models") if v is not None else (None, f"needs system {system}")
    return measure


def _capacity(summary: pd.DataFrame) -> tuple:
    """The WarmServe/MuxServe capacity ratio as an interval from a rate sweep (``rps`` column,
    experiments/capacity.py), or what one run says."""
    from warmsim.experiments.capacity import brackets, ratio_interval
    a = summary[summary.model == "ALL"]
    rates = a.groupby("system")["rps"].nunique() if "rps" in a.columns else pd.Series(dtype=int)
    if {"muxserve", "warmserve"} <= set(rates.index) and min(rates["muxserve"], rates["warmserve"]) >= 2:
        b = brackets(a)
        lo, hi, point = ratio_interval(b["warmserve"], b["muxserve"])
        alpha = a["alpha"].dropna().unique() if "alpha" in a.columns else []
        below = b["muxserve"].fails_below
        how = (f"capacity = [largest passing, first failing) rate with SLO attainment >= 0.99: warmserve "
               f"{b['warmserve'].text()}, muxserve {b['muxserve'].text()}"
               + (f" (muxserve also fails at {', '.join(f'{r:g}' for r in below)})" if below else "")
               + f"; ratio interval [largest passing warmserve / first failing muxserve, first failing warmserve / "
               f"largest passing muxserve]; largest passing rates alone {point:.2f}x"
               + (f"; alpha {', '.join(f'{x:g}' for x in alpha)}" if len(alpha) else ""))
        return (point if point == point else None), how, (lo, hi)
    a = _all(summary)
    if not {"muxserve", "warmserve"} <= set(a.index):
        return None, "needs a rate sweep: warmsim run -m experiment=paper_capacity, then warmsim figures"
    return None, (f"one rate only: SLO attainment muxserve {a.loc['muxserve', 'slo_attainment']:.3f} vs warmserve "
                  f"{a.loc['warmserve', 'slo_attainment']:.3f}; the ratio of capacities needs a rate sweep: "
                  "warmsim run -m experiment=paper_capacity, then warmsim report DIR --html")


def _accuracy(column: str) -> Callable[[pd.DataFrame], tuple[float | None, str]]:
    def measure(summary: pd.DataFrame) -> tuple[float | None, str]:
        a = _all(summary)
        if "warmserve" not in a.index or column not in a.columns:
            return None, "needs system warmserve"
        v = a.loc["warmserve", column]
        n = a.loc["warmserve", "pred_windows"] if "pred_windows" in a.columns else float("nan")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None, "no prediction window closed in this run (experiment=paper_prediction replays 3 h)"
        return float(v), f"warmserve, over {int(n) if n == n else '?'} closed windows"
    return measure


def _share(system: str) -> Callable[[pd.DataFrame], tuple[float | None, str]]:
    def measure(summary: pd.DataFrame) -> tuple[float | None, str]:
        a = _all(summary)
        if system not in a.index:
            return None, f"needs system {system} (experiment=paper_ablation)"
        how = f"share of all of {system}'s requests with TTFT under 100 ms"
        if "start_requests" in a.columns:
            n, share, hit = a.loc[system, "start_requests"], a.loc[system, "start_ttft_fast"], a.loc[system, "start_hit_ratio"]
            how += (f"; of the {int(n)} that met an instance start: {_fmt(share, 'share') if share == share else '-'}"
                    f"; activations on prewarmed weights: {_fmt(hit, 'share') if hit == hit else '- (none)'}")
        return float(a.loc[system, "ttft_under_fast"]), how
    return measure


def _start_share(system: str) -> Callable[[pd.DataFrame], tuple[float | None, str]]:
    def measure(summary: pd.DataFrame) -> tuple[float | None, str]:
        a = _all(summary)
        if system not in a.index or "start_ttft_fast" not in a.columns:
            return None, f"needs system {system} (experiment=paper_ablation)"
        v = a.loc[system, "start_ttft_fast"]
        if v != v:
            return None, f"no request of {system} met an instance start"
        return float(v), (f"share of {system}'s {int(a.loc[system, 'start_requests'])} requests that met an "
                          f"instance start with TTFT under 100 ms")
    return measure


CLAIMS: tuple[Claim, ...] = (
    Claim("tail TTFT, ServerlessLLM / WarmServe (up to)", 50.8, "x", "[P]", _tail_vs_sllm,
          "SLLM's deployment (keep-alive, cache tier, version) is not released; warmsim runs SLLM's own "
          "defaults (keep-alive 0 s), so a model's tail is a cold start that pays vLLM's whole start (process, "
          "imports, the 100,000-token profiling forward) while WarmServe's per-model tails are tens of ms; the "
          "ratio rests on those start stages (the range) and on how many requests meet a cold start (the seed)"),
    Claim("requests served, WarmServe / MuxServe (up to)", 2.5, "x", "[P]", _capacity,
          "MuxServe runs on 8 GPUs against WarmServe's 16, as in the artifact; its mesh split and caps come "
          "from MuxServe's estimator on warmsim's cost profile, planned once at 15 req/s (plan_rps), not from "
          "the authors' unreleased YAMLs; the SLO, criterion and planning rate behind 2.5x are not released",
          uses_sweep=True),
    Claim("P99 TTFT, ServerlessLLM", 3.45, "s", "[S]", _p99_of("sllm"),
          "summary number, unverified; depends on the rate and alpha of the figure it came from"),
    Claim("P99 TTFT, MuxServe", 2.34, "s", "[S]", _p99_of("muxserve"),
          "summary number, unverified; warmsim's MuxServe tail comes from requests held over its cap (1-s re-poll)"),
    Claim("P99 TTFT, WarmServe", 0.29, "s", "[S]", _p99_of("warmserve"),
          "summary number, unverified; warmsim's default profile (h100_reference) has 7B/13B steps, copies and "
          "the process start measured on one H100 by an external script, the start stages and the 70B analytic "
          "(the report's cost-profile line names the profile used)"),
    Claim("prediction accuracy, average", 0.947, "share", "[S]", _accuracy("pred_acc_avg"),
          "warmsim's history is sampled days with cost-model service times, the artifact's is the full "
          "trace's concurrency times the sampling fraction"),
    Claim("prediction accuracy, peak", 0.927, "share", "[S]", _accuracy("pred_acc_peak"),
          "the artifact's baseline peak (fraction x full-trace peak) is smoother than warmsim's sampled one"),
    *(Claim(f"share TTFT < 100 ms, {s}", v, "share", "[S]", _share(s),
            "shares depend on how often a request meets an instance start, which the start stages (analytic) decide")
      for s, v in ABLATION_SHARES.items()),
    *(Claim(f"share TTFT < 100 ms of start-affected requests, {s}", v, "share", "[S]", _start_share(s),
            "the same [S] number read as a share of the requests that met an instance start (the paper's "
            "metric is not stated; 100% for full WarmServe cannot be a share of all requests)")
      for s, v in ABLATION_SHARES.items()),
)

#: Which claims each experiment of the paper setup measures (by name prefix), for ``warmsim sensitivity``.
CLAIM_EXPERIMENTS = {"headline": ("tail TTFT", "P99 TTFT"), "ablation": ("share TTFT",),
                     "capacity": ("requests served",)}


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "x" and math.isinf(v):
        return "inf"
    return f"{v:.2f}x" if unit == "x" else f"{v:.3f} s" if unit == "s" else f"{100 * v:.1f}%"


#: Where the ranges come from: ``warmsim sensitivity`` (full, seed 0) at the shipped defaults; the same
#: file as figures/out/sensitivity/claims_ranges.csv (a test keeps the two equal).
RANGES_FILE = ("data", "claims_ranges.csv")
#: A run's number and the shipped default are "the same run" when they agree to this relative tolerance.
SAME_DEFAULT_RTOL = 1e-9


def shipped_ranges() -> pd.DataFrame:
    """The claims' ranges that ``warmsim sensitivity`` found at the defaults (one row per claim, or per
    end of an interval claim: ``claim, unit, tag, paper, default, low, high, paper_inside, moved_most_by``)."""
    f = resources.files("warmsim.experiments").joinpath(*RANGES_FILE)
    with f.open("r") as fh:
        return pd.read_csv(fh)


def _same(a: float, b: float) -> bool:
    return (math.isinf(a) and a == b) or math.isclose(a, b, rel_tol=SAME_DEFAULT_RTOL)


def range_cells(claim: Claim, value: float | None, interval: tuple | None,
                ranges: pd.DataFrame) -> tuple[str, str, str]:
    """(range, paper inside?, knob that moves it most) for one claim of this run. The shipped ranges
    hold at the defaults only: they are shown when this run reproduces the default number exactly, and
    otherwise the cell says to run ``warmsim sensitivity`` for this configuration."""
    rows = ranges[(ranges.claim == claim.name) | ranges.claim.str.startswith(claim.name + ", ")]
    if not len(rows) or value is None and interval is None:
        return "-", "-", "-"
    measured = list(interval) if interval else [value]
    if len(rows) != len(measured) or not all(_same(float(r.default), float(m))
                                             for r, m in zip(rows.itertuples(), measured)):
        return "another configuration than the shipped ranges': run warmsim sensitivity", "-", "-"
    parts, inside, knobs = [], [], []
    for r in rows.itertuples():
        end = r.claim[len(claim.name) + 2:]
        parts.append((f"{end}: " if end else "") + f"{_fmt(float(r.low), claim.unit)} .. {_fmt(float(r.high), claim.unit)}")
        inside.append(("yes" if bool(r.paper_inside) else "no") + (f" ({end})" if end else ""))
        knobs.append(str(r.moved_most_by) + (f" ({end})" if end else ""))
    return "; ".join(parts), ", ".join(inside), ", ".join(knobs)


def claims_table(summary: pd.DataFrame, sweep: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim: paper, warmsim, warmsim / paper, how warmsim's number was computed, the gap.
    ``sweep``: summary rows of a rate sweep (an ``rps`` column, an ``alpha`` column when known) for
    the claims measured on one (capacity)."""
    rows, ranges = [], shipped_ranges()
    for c in CLAIMS:
        v, how, *interval = c.measure(sweep if c.uses_sweep and sweep is not None else summary)
        text, ratio = _fmt(v, c.unit), "-" if v is None else f"{v / c.paper:.2f}"
        if interval:  # a range: both ends, and both over the paper's number
            lo, hi = interval[0]
            text = interval_text(lo, hi)
            ratio = "[" + ", ".join("inf" if math.isinf(e) else f"{e / c.paper:.2f}" for e in (lo, hi)) + "]"
        span, inside, knob = range_cells(c, v, interval[0] if interval else None, ranges)
        rows.append({"claim": c.name, "source": c.tag, "paper": _fmt(c.paper, c.unit), "warmsim": text,
                     "ratio": ratio, "range": span, "paper inside": inside, "moved most by": knob,
                     "how": how, "difference": c.gap})
    return pd.DataFrame(rows)


def claims_markdown(summary: pd.DataFrame) -> list[str]:
    """The "Paper claims" section of report.md."""
    t = claims_table(summary)
    lines = ["## Paper claims", "",
             "[P]: the paper's text; [S]: a third-party summary, unverified (docs/warmserve.md). Ratio = "
             "warmsim / paper. A claim that this run cannot measure says what would. Range: the claim over "
             "one unmeasured or unsourced choice at a time (`warmsim sensitivity`, shipped for the defaults; "
             "docs/warmserve.md, \"Claims as ranges\"), with the choice that moves it most.", "",
             "| claim | source | paper | warmsim | ratio | range | paper inside? | moved most by | "
             "how warmsim's number was computed | difference |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in t.to_dict("records"):
        lines.append("| " + " | ".join(str(r[c]) for c in t.columns) + " |")
    return lines + [""]
