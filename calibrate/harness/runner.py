"""Run a sweep section by section into a profile directory.

Each section's table is written as soon as it finishes and ``meta.json`` is rewritten after every
section, so an interruption loses nothing already measured. A section that raises is recorded as
``failed`` with its reason and the others still run.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warmsim.calibrate.harness.device import Device
from warmsim.calibrate.harness.plan import SweepPlan
from warmsim.calibrate.harness.sections import SECTIONS, Rows
from warmsim.sim.costprofile.profile import FORMAT_VERSION, SECTION_TABLES, write_meta, write_table

#: Version of the harness, recorded in every profile it writes.
HARNESS_VERSION = "0.1.0"
#: Label of a profile measured on a real GPU.
MEASURED_LABEL = "measured by warmsim calibrate"

log = logging.getLogger(__name__)


def new_meta(name: str, measured: bool, label: str, plan: SweepPlan, info: dict[str, Any],
             created: str | None = None) -> dict[str, Any]:
    """The ``meta.json`` skeleton before any section ran."""
    return {
        "name": name, "measured": measured, "label": label, "format_version": FORMAT_VERSION,
        "harness_version": HARNESS_VERSION, "plan": plan.name, "budgets_s": dict(plan.budgets_s),
        "created": created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "gpu": info.get("gpu", {}), "host": info.get("host", {}), "sections": {},
    }


def run_sweep(device: Device, out: Path, plan: SweepPlan, *, name: str, measured: bool = True,
              label: str = MEASURED_LABEL, sections: list[str] | None = None,
              extra_meta: dict[str, Any] | None = None, created: str | None = None,
              clock: Callable[[], float] = time.perf_counter,
              overrides: dict[str, Callable[[Device, SweepPlan], Rows]] | None = None) -> dict[str, Any]:
    """Measure every section (or ``sections``) of ``plan`` on ``device`` into directory ``out``.

    Returns the final meta dict. ``overrides`` replaces section functions (the analytic profile
    writes its own ``assumed`` rows this way).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = new_meta(name, measured, label, plan, device.info(), created)
    meta.update(extra_meta or {})
    write_meta(out, meta)
    funcs = dict(SECTIONS, **(overrides or {}))
    for sec in sections or list(SECTIONS):
        t0 = clock()
        try:
            rows = funcs[sec](device, plan)
            write_table(out, SECTION_TABLES[sec], rows)
            status = {"status": "ok", "rows": len(rows)}
        except KeyboardInterrupt:  # an interrupted sweep keeps what it measured and says where it stopped
            meta["sections"][sec] = {"status": "failed", "reason": "interrupted", "seconds": round(clock() - t0, 3)}
            write_meta(out, meta)
            raise
        except Exception as e:  # noqa: BLE001 - a failed section is data, not a crash
            reason = f"{type(e).__name__}: {e}".strip()
            log.warning("section %s failed: %s", sec, reason)
            log.debug("%s", traceback.format_exc())
            status = {"status": "failed", "reason": reason}
        status["seconds"] = round(clock() - t0, 3)
        meta["sections"][sec] = status
        write_meta(out, meta)
        log.info("section %s: %s (%.1f s, budget %s s)", sec, status["status"], status["seconds"],
                 dict(plan.budgets_s).get(sec))
    return meta
