"""Headline numbers of two profiles side by side (``warmsim calibrate --diff A B``).

For reviewing a new measured profile against the analytic one (or two GPUs against each other):
link bandwidths, VMM per-chunk costs, process start, interference, and what they add up to for one
reference model (prefill, decode step, cold start from pinned host memory).
"""

from __future__ import annotations

import math
import warnings

from warmsim.calibrate.estimate import EstimateRequest, estimate
from warmsim.sim.catalog import get_shape
from warmsim.sim.costmodel import ProfileCostModel
from warmsim.sim.costprofile.profile import external_note
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel

#: Reference model and request of the composed rows.
REFERENCE_MODEL = "llama-2-7b"
REFERENCE_PROMPT = 1024
REFERENCE_DECODE_BATCH = 16


def headline(cost: ProfileCostModel) -> dict[str, float]:
    """Numeric headline of one profile: the fit summary plus composed costs of the reference model."""
    out = {k: float(v) for k, v in cost.fitted.summary().items()
           if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None}
    model = ServedModel(REFERENCE_MODEL, get_shape(REFERENCE_MODEL), 1)
    m = REFERENCE_MODEL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolation notes belong to estimate, not to a diff
        try:
            out[f"{m}_prefill_{REFERENCE_PROMPT}_s"] = cost.prefill_s(model, REFERENCE_PROMPT, 1)
            out[f"{m}_decode_step_b{REFERENCE_DECODE_BATCH}_s"] = cost.decode_coeffs(model).step_s(
                REFERENCE_DECODE_BATCH, REFERENCE_DECODE_BATCH * REFERENCE_PROMPT)
        except UserError:  # the profile lacks compute sections
            pass
        try:
            e = estimate(EstimateRequest(m, cost.name, "host_pinned", REFERENCE_PROMPT), cost)
            out[f"{m}_cold_start_pinned_ttft_s"] = e.ttft_s
        except UserError:
            pass
    return out


def format_diff(a: ProfileCostModel, b: ProfileCostModel) -> str:
    """A table of both headlines and the ratio ``b / a``; a row only one profile has shows ``-``."""
    ha, hb = headline(a), headline(b)
    def kind(c: ProfileCostModel) -> str:
        return external_note(c.fitted.meta) or ("measured" if c.measured else "NOT measured")

    lines = [f"A = {a.name} ({kind(a)}), B = {b.name} ({kind(b)})",
             f"  {'quantity':<38} {'A':>12} {'B':>12} {'B/A':>8}"]
    for key in list(dict.fromkeys([*ha, *hb])):
        va, vb = ha.get(key), hb.get(key)
        ratio = vb / va if va and vb is not None and math.isfinite(va) and va != 0 else None
        lines.append(f"  {key:<38} {_num(va):>12} {_num(vb):>12} {_num(ratio, ratio=True):>8}")
    return "\n".join(lines)


def _num(v: float | None, ratio: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}x" if ratio else f"{v:.4g}"
