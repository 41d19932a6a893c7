"""Tornado figures of ``warmsim sensitivity``: how far each knob moves one paper claim.

Input: the rows of ``sensitivity.csv`` (columns experiment, claim, unit, paper, knob, value, warmsim).
One figure per claim: per knob a bar from its lowest to its highest value of the claim (the default
run included), widest first; a solid line at warmsim's default and a dashed one at the paper's number.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.figures import style


def slug(claim: str) -> str:
    """A file-name-safe form of a claim's name."""
    return re.sub(r"[^a-z0-9]+", "_", claim.lower()).strip("_")[:60]


def bars(rows: pd.DataFrame) -> tuple[float, list[tuple[str, float, float, str, str]]]:
    """The default value and, per knob, (knob, low, high, label at low, label at high), widest first."""
    base = rows[rows.knob == "default"].warmsim
    default = float(base.iloc[0]) if len(base) else float("nan")
    out = []
    for knob, g in rows[rows.knob != "default"].groupby("knob", sort=False):
        pts = [("default", default), *zip(g.value.astype(str), g.warmsim.astype(float))]
        pts = [(lab, v) for lab, v in pts if np.isfinite(v)]
        if not pts:
            continue
        lo, hi = min(pts, key=lambda t: t[1]), max(pts, key=lambda t: t[1])
        out.append((str(knob), lo[1], hi[1], lo[0], hi[0]))
    out.sort(key=lambda b: -(b[2] - b[1]))
    return default, out


def draw(rows: pd.DataFrame, out_path) -> dict:
    """One claim's tornado; returns its default, range and widest knob."""
    claim, unit, paper = rows.claim.iloc[0], rows.unit.iloc[0], float(rows.paper.iloc[0])
    default, bs = bars(rows)
    fig, ax = style.new_figure(width=8, height=1.2 + 0.42 * max(len(bs), 1))
    y = np.arange(len(bs))[::-1]
    for yi, (_knob, lo, hi, llab, hlab) in zip(y, bs):
        ax.barh(yi, max(hi - lo, 1e-12), left=lo, height=0.6, color="#9ecae1", edgecolor="#3182bd")
        ax.text(lo, yi, f"{llab} ", ha="right", va="center", fontsize=7)
        ax.text(hi, yi, f" {hlab}", ha="left", va="center", fontsize=7)
    ax.set_yticks(y, [b[0] for b in bs])
    if np.isfinite(default):
        ax.axvline(default, color="black", lw=1.2, label=f"warmsim default ({default:.3g})")
    ax.axvline(paper, color="#d62728", lw=1.2, ls="--", label=f"paper ({paper:.3g})")
    vals = [v for b in bs for v in b[1:3]] + [paper] + ([default] if np.isfinite(default) else [])
    lo_v, hi_v = min(vals), max(vals)
    if unit == "x" and lo_v > 0 and hi_v / lo_v > 20:
        ax.set_xscale("log")
        ax.set_xlim(lo_v / 2.5, hi_v * 2.5)  # room for the value labels at both ends
    else:
        pad = 0.25 * (hi_v - lo_v) or 0.25 * abs(hi_v) or 1.0
        ax.set_xlim(lo_v - pad, hi_v + pad)
    unit_label = {"x": "ratio (x)", "s": "seconds", "share": "share"}.get(unit, unit)
    ax.set_xlabel(unit_label)
    ax.set_title(f"{claim}: range over one knob at a time", fontsize=10)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    style.save(fig, out_path)
    return {"claim": claim, "default": default, "low": min(b[1] for b in bs) if bs else default,
            "high": max(b[2] for b in bs) if bs else default, "widest": bs[0][0] if bs else None}


def draw_all(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """A tornado per claim of ``rows`` into ``out_dir/tornado_<claim>.png``."""
    paths = []
    for (_, claim), g in rows.groupby(["experiment", "claim"], sort=False):
        if (g.knob != "default").sum() == 0:
            continue
        path = Path(out_dir) / f"tornado_{slug(claim)}.png"
        draw(g, path)
        paths.append(path)
    return paths
