"""The bodies of ``warmsim compare`` and ``warmsim run`` (inside hydra's run directory)."""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from experiments.builder import build_setup
from experiments.outputs import begin_run, comparison_table, workload_lines, write_run
from experiments.runner import run_system
from sim.errors import UserError


@contextmanager
def collected_warnings(notes: list[str]):
    """Collect warnings (e.g. a cost curve extrapolated or scaled from another shape) into ``notes``
    instead of printing tracebacks-like lines in the middle of the table; they go to report.md."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    for w in caught:
        msg = f"{w.category.__name__}: {w.message}"
        if msg not in notes:
            notes.append(msg)


def _print_notes(notes: list[str], outdir: Path) -> None:
    if notes:
        print(f"note: {len(notes)} cost-model warning(s) (curves scaled from other shapes or extrapolated); "
              f"see {outdir / 'report.md'}", file=sys.stderr)


def compare(cfg, outdir: Path) -> None:
    """Run every system in ``cfg.systems`` on one workload; print the table; write the run directory."""
    from experiments.systems import resolve
    scfgs = resolve(cfg)
    begin_run(outdir)
    notes: list[str] = []
    with collected_warnings(notes):
        setup = build_setup(cfg)
        print("\n".join(workload_lines(setup)), flush=True)
        results = [run_system(setup, s, cfg) for s in scfgs]
    summary = write_run(outdir, results, cfg, setup, notes)
    print(f"profile: {setup.cost.name} ({'measured' if setup.cost.measured else 'analytic, not measured'}); "
          f"workload: {len(setup.workload)} requests, {setup.workload.duration_s:.0f} s")
    print(comparison_table(summary))
    print(f"\nresults: {outdir}")
    _print_notes(notes, outdir)


def run_one(cfg, outdir: Path) -> None:
    """Run ``cfg.system`` alone (with ``overrides.<its name>``)."""
    from experiments.systems import resolve
    scfg = resolve(cfg, [cfg.system.get("name")], strict=False)[0]
    begin_run(outdir)
    notes: list[str] = []
    with collected_warnings(notes):
        setup = build_setup(cfg)
        print("\n".join(workload_lines(setup)), flush=True)
        result = run_system(setup, scfg, cfg)
    summary = write_run(outdir, [result], cfg, setup, notes)
    print(comparison_table(summary))
    print(f"\nresults: {outdir}")
    _print_notes(notes, outdir)
