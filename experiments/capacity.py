"""Capacity from a rate sweep: the largest passing and the first failing rate per system, and the
ratio of two systems' capacities as an interval (the figure ``max_rps`` and the claims table).

A rate *passes* when the system's ``ALL`` row meets the criterion there: SLO attainment at least
``slo_min`` (``criterion="slo"``) or P99 TTFT at most ``p99_limit_s`` (``"p99"``). A system's
capacity lies in its bracket ``[largest passing rate, first failing rate above it)``: the first
failing rate is the lowest swept rate above the largest passing one (None when the system passes
at the top of the sweep: the capacity is then at least the top rate). Failures below the largest
passing rate (MuxServe planned for another rate, ServerlessLLM's keep-alive) are listed apart, not
hidden. The largest passing rate is 0 and the first failing the lowest swept rate when a system
passes nowhere.

The ratio of system A's capacity to B's is then known to lie in the interval
``[pass_A / fail_B, fail_A / pass_B]`` (a ratio of any capacity inside A's bracket to any inside
B's; an open end is infinite), with ``pass_A / pass_B`` the number a "largest passing rate" table
would give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

#: Criteria a rate must meet to count as "served".
CRITERIA = ("slo", "p99")


def meets(row, criterion: str, p99_limit_s: float, slo_min: float) -> bool:
    """Whether one ``ALL`` summary row meets the criterion."""
    if criterion == "p99":
        return bool(row["ttft_p99_s"] <= p99_limit_s)
    return bool(row["slo_attainment"] >= slo_min)


def criterion_text(criterion: str, p99_limit_s: float, slo_min: float) -> str:
    """Human-readable criterion."""
    return f"P99 TTFT <= {p99_limit_s:g} s" if criterion == "p99" else f"SLO attainment >= {slo_min:g}"


@dataclass(frozen=True)
class Bracket:
    """A system's capacity bracket on the swept rates."""

    largest_pass: float  # 0: passes at no swept rate
    first_fail: float | None  # None: passes at the highest swept rate
    fails_below: tuple[float, ...]  # swept rates below largest_pass where it fails
    rates: tuple[float, ...]  # the rates the system was swept at

    def text(self) -> str:
        """``[pass, fail) req/s``, ``>= top req/s`` or ``< lowest req/s``."""
        if self.largest_pass <= 0:
            return f"< {self.first_fail:g} req/s"
        if self.first_fail is None:
            return f">= {self.largest_pass:g} req/s"
        return f"[{self.largest_pass:g}, {self.first_fail:g}) req/s"


def brackets(sweep: pd.DataFrame, criterion: str = "slo", p99_limit_s: float = 1.0,
             slo_min: float = 0.99) -> dict[str, Bracket]:
    """Per system, its :class:`Bracket` from the ``ALL`` rows of ``sweep`` (one per rate; column ``rps``)."""
    out = {}
    allrows = sweep[sweep["model"] == "ALL"].sort_values("rps", kind="stable")
    for s, g in allrows.groupby("system", sort=False):
        ok = [(float(row["rps"]), meets(row, criterion, p99_limit_s, slo_min)) for _, row in g.iterrows()]
        rates = tuple(r for r, _ in ok)
        best = max((r for r, good in ok if good), default=0.0)
        above = [r for r, good in ok if r > best and not good]
        out[s] = Bracket(best, min(above) if above else None,
                         tuple(r for r, good in ok if r < best and not good), rates)
    return out


def ratio_interval(num: Bracket, den: Bracket) -> tuple[float, float, float]:
    """``(low, high, point)``: the interval ``[pass_num / fail_den, fail_num / pass_den]`` holding the
    ratio of the two capacities, and ``pass_num / pass_den``. A denominator that never failed gives a
    low end of 0, a numerator that never failed or a denominator that never passed a high end of
    ``inf``; the point is NaN when the denominator never passed."""
    lo = num.largest_pass / den.first_fail if den.first_fail else 0.0
    hi = num.first_fail / den.largest_pass if (num.first_fail is not None and den.largest_pass > 0) else math.inf
    point = num.largest_pass / den.largest_pass if den.largest_pass > 0 else math.nan
    return lo, hi, point


def interval_text(lo: float, hi: float) -> str:
    """``[1.43x, 2.00x]``, with ``inf`` shown as an open end."""
    def f(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x:.2f}x"
    return f"[{f(lo)}, {f(hi)}]"
