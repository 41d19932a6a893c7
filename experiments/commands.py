"""The bodies of ``warmsim compare`` and ``warmsim run`` (inside hydra's run directory)."""

from __future__ import annotations

from pathlib import Path

from experiments.builder import build_setup, system_config
from experiments.outputs import comparison_table, write_run
from experiments.runner import run_system
from sim.errors import UserError


def compare(cfg, outdir: Path) -> None:
    """Run every system in ``cfg.systems`` on one workload; print the table; write the run directory."""
    names = list(cfg.systems or [])
    if not names:
        raise UserError("config key systems: empty; name at least one system")
    scfgs = [cfg.system if cfg.system.get("name") == n else system_config(n) for n in names]
    setup = build_setup(cfg)
    results = [run_system(setup, s, cfg) for s in scfgs]
    summary = write_run(outdir, results, cfg, setup)
    print(f"profile: {setup.cost.name} ({'measured' if setup.cost.measured else 'analytic, not measured'}); "
          f"workload: {len(setup.workload)} requests, {setup.workload.duration_s:.0f} s")
    print(comparison_table(summary))
    print(f"\nresults: {outdir}")


def run_one(cfg, outdir: Path) -> None:
    """Run ``cfg.system`` alone."""
    setup = build_setup(cfg)
    result = run_system(setup, cfg.system, cfg)
    summary = write_run(outdir, [result], cfg, setup)
    print(comparison_table(summary))
    print(f"\nresults: {outdir}")
