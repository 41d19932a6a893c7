"""Generic curve fits that keep their raw points and warn when a query extrapolates.

* :class:`LinearFit`: ``y = intercept + sum(coef_i * x_i)`` by least squares on per-point medians.
* :class:`PiecewiseLinear`: interpolation between measured points.

Warnings are :class:`ExtrapolationWarning` with a message that names the curve and its measured
range but not the query, so Python's default warning filter shows each curve's warning once.
"""

from __future__ import annotations

import bisect
import statistics
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class ExtrapolationWarning(UserWarning):
    """A cost was asked for outside the range the profile measured."""


def warn_extrapolation(label: str, lo: float, hi: float, stacklevel: int = 3) -> None:
    """Warn that curve ``label`` (whose profile points span ``[lo, hi]``, measured or analytic) is used
    outside that range."""
    warnings.warn(f"{label}: query outside the profile's range [{lo:g}, {hi:g}]; extrapolating",
                  ExtrapolationWarning, stacklevel=stacklevel)


def medians(rows: Iterable[dict[str, Any]], keys: Sequence[str], value: str = "seconds") -> dict[tuple, float]:
    """Median of ``value`` over the rows sharing each combination of ``keys``."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(float(r[value]))
    return {k: statistics.median(v) for k, v in sorted(groups.items())}


@dataclass(frozen=True)
class LinearFit:
    """``y = intercept + coef . x`` fitted by least squares; ``ranges`` are each regressor's measured span.

    ``points`` keeps the (x..., y) medians the fit was made from.
    """

    label: str
    intercept: float
    coef: tuple[float, ...]
    ranges: tuple[tuple[float, float], ...]
    points: tuple[tuple[float, ...], ...]

    def __call__(self, *x: float, warn: bool = True) -> float:
        if warn:
            for xi, (lo, hi) in zip(x, self.ranges):
                if xi < lo or xi > hi:
                    warn_extrapolation(self.label, lo, hi)
                    break
        return self.intercept + sum(c * xi for c, xi in zip(self.coef, x))

    def residual_rms(self) -> float:
        """Root-mean-square relative residual of the fit on its own points (a fit-quality number)."""
        errs = [(self(*p[:-1], warn=False) - p[-1]) / p[-1] for p in self.points if p[-1]]
        return float(np.sqrt(np.mean(np.square(errs)))) if errs else 0.0


def fit_linear(label: str, xs: Sequence[Sequence[float]], ys: Sequence[float], *, intercept: bool = True,
               nonnegative: bool = True, relative: bool = True) -> LinearFit:
    """Least-squares fit of ``ys`` on regressor rows ``xs``.

    With ``relative`` (default) the residuals are weighted by ``1 / y``, so timings spanning orders
    of magnitude fit in relative terms (small sizes then pin the latency, large ones the bandwidth).
    With ``nonnegative`` a negative coefficient (noise on a tiny term) is dropped and the fit redone
    without it, so costs never decrease with size.
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    w = 1.0 / np.where(y > 0, y, 1.0) if relative else np.ones(len(y))
    if x.ndim == 1:
        x = x[:, None]
    if len(y) == 0:
        raise ValueError(f"{label}: no points to fit")
    active = list(range(x.shape[1]))
    use_icpt = intercept
    while True:
        cols = [x[:, i] for i in active] + ([np.ones(len(y))] if use_icpt else [])
        a = np.column_stack(cols) if cols else np.zeros((len(y), 0))
        sol = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)[0] if cols else np.zeros(0)
        coef = dict(zip(active, sol[: len(active)]))
        icpt = float(sol[-1]) if use_icpt else 0.0
        if not nonnegative:
            break
        neg = [i for i, c in coef.items() if c < 0]
        if neg:
            active.remove(min(neg, key=lambda i: coef[i]))
            continue
        if use_icpt and icpt < 0:
            use_icpt = False
            continue
        break
    full = tuple(float(coef.get(i, 0.0)) for i in range(x.shape[1]))
    ranges = tuple((float(x[:, i].min()), float(x[:, i].max())) for i in range(x.shape[1]))
    points = tuple(tuple(map(float, row)) + (float(v),) for row, v in zip(x, y))
    return LinearFit(label, icpt, full, ranges, points)


@dataclass(frozen=True)
class PiecewiseLinear:
    """Linear interpolation through measured ``(x, y)`` points (sorted by x).

    Below the first point the first value is kept (latency floor); above the last point the last
    segment's slope continues. Both warn.
    """

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]

    @classmethod
    def from_points(cls, label: str, points: dict[float, float]) -> PiecewiseLinear:
        if not points:
            raise ValueError(f"{label}: no points")
        xs = tuple(sorted(points))
        return cls(label, tuple(float(x) for x in xs), tuple(float(points[x]) for x in xs))

    def __call__(self, x: float, warn: bool = True) -> float:
        xs, ys = self.xs, self.ys
        if x <= xs[0]:
            if x < xs[0] and warn:
                warn_extrapolation(self.label, xs[0], xs[-1])
            return ys[0]
        if x > xs[-1]:
            if warn:
                warn_extrapolation(self.label, xs[0], xs[-1])
            if len(xs) == 1:
                return ys[0] * x / xs[0]
            i = len(xs) - 1
        else:
            i = bisect.bisect_left(xs, x)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
