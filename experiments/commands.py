"""The bodies of ``warmsim compare`` and ``warmsim run`` (inside hydra's run directory): a thin layer
over :func:`warmsim.experiments.api.simulate` that prints the workload's lines first and the table last."""

from __future__ import annotations

import sys
from pathlib import Path


def _print_notes(notes: list[str], outdir: Path) -> None:
    setup = [n for n in notes if n.startswith("SetupWarning: ")]
    for n in setup:  # a setup that probably does not do what was meant: in full
        print(f"warning: {n[len('SetupWarning: '):]}", file=sys.stderr)
    cost = [n for n in notes if n not in setup]
    if cost:
        print(f"note: {len(cost)} cost-model warning(s) (curves scaled from other shapes or extrapolated); "
              f"see {outdir / 'report.md'}", file=sys.stderr)


def _echo(text: str) -> None:
    print(text, flush=True)


def _echo_config_dirs() -> None:
    """Name the user config directories the run reads (their YAML and Python run as part of it)."""
    from warmsim.experiments.confpath import user_dirs
    dirs = user_dirs()
    if dirs:
        print(f"config dirs: {', '.join(str(d) for d in dirs)} (trusted like a script: docs/configs.md)", flush=True)


def compare(cfg, outdir: Path) -> None:
    """Run every system in ``cfg.systems`` on one workload; print the table; write the run directory."""
    from warmsim.experiments.api import simulate
    from warmsim.sim.costprofile.shipped import external_note_of
    _echo_config_dirs()
    res = simulate(cfg, None, outdir, echo=_echo)
    cost = res.summary["profile"].iloc[0]
    measured = bool(res.summary["profile_measured"].iloc[0])
    kind = external_note_of(cost) if measured else None
    print(f"profile: {cost} ({kind or ('measured' if measured else 'analytic, not measured')}); "
          f"workload: {res.workload_requests} requests, {res.duration_s:.0f} s")
    print(res.table())
    print(f"\nresults: {outdir}")
    _print_notes(res.cost_notes, outdir)


def run_one(cfg, outdir: Path) -> None:
    """Run ``cfg.system`` alone (with ``overrides.<its name>``)."""
    from warmsim.experiments.api import simulate
    _echo_config_dirs()
    res = simulate(cfg, [cfg.system.get("name")], outdir, echo=_echo, strict=False)
    print(res.table())
    print(f"\nresults: {outdir}")
    _print_notes(res.cost_notes, outdir)
