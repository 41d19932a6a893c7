"""A small Python API for notebooks and scripts: what ``warmsim compare`` / ``run`` do, as functions.

    from warmsim.experiments.api import compare, config, load, run

    cfg = config("workload.rps=10", "systems=[static,warmserve]")   # hydra overrides, checked as the CLI checks them
    res = compare(cfg)                                              # every system in cfg.systems
    res.summary                                                     # pandas DataFrames ...
    res.requests, res.timeline, res.predictions
    res.dir                                                         # ... and the run directory they were written to
    again = load(res.dir)                                           # a run directory read back

``warmsim compare`` and ``warmsim run`` are a thin layer over :func:`simulate` (they add hydra's run
directory, sweeps and the printed table). Documented with examples in ``docs/api.md``.
"""

from __future__ import annotations

import json
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from warmsim.sim.errors import UserError

__all__ = ["Run", "config", "compare", "run", "simulate", "load", "claim_dir", "sensitivity"]


@dataclass
class Run:
    """One run's results: tables as DataFrames and the directory they are in (None when not written).

    ``summary``: one row per (system, model) plus ``ALL`` (the summary.csv contract);
    ``requests``: one row per request; ``timeline``: lifecycle and memory events (docs/timeline.md);
    ``predictions``: per model and window, predicted and observed load; ``faults``: each fault and what it
    took (``faults.csv``); ``config``: the resolved config;
    ``systems``: each system's resolved config; ``notes``: what the workload builder changed."""

    summary: pd.DataFrame
    dir: Path | None = None
    config: dict = field(default_factory=dict)
    systems: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    cost_notes: list = field(default_factory=list)
    #: The workload's size and length (requests, seconds).
    workload_requests: int = 0
    duration_s: float = 0.0
    _tables: dict = field(default_factory=dict, repr=False)

    def _table(self, name: str, file: str) -> pd.DataFrame:
        if name not in self._tables:
            if self.dir is None or not (self.dir / file).is_file():
                raise UserError(f"run has no {file} (output.{name}=false, or not written)")
            reader = pd.read_parquet if file.endswith(".parquet") else pd.read_csv
            self._tables[name] = reader(self.dir / file)
        return self._tables[name]

    @property
    def requests(self) -> pd.DataFrame:
        return self._table("requests", "requests.parquet")

    @property
    def timeline(self) -> pd.DataFrame:
        return self._table("timeline", "timeline.parquet")

    @property
    def steps(self) -> pd.DataFrame:
        """One row per engine step (``output.steps=true``; docs/simulator.md "Per-step metrics")."""
        return self._table("steps", "steps.parquet")

    @property
    def predictions(self) -> pd.DataFrame:
        return self._table("predictions", "predictions.csv")

    @property
    def faults(self) -> pd.DataFrame:
        """One row per fault and system (``faults.csv``): time, the fault, instances and replicas lost,
        requests retried and dropped; empty (same columns) for a run without faults."""
        from warmsim.sim.faults import FAULT_COLUMNS
        if self.dir is None or not (self.dir / "faults.csv").is_file():
            return pd.DataFrame(columns=list(FAULT_COLUMNS))
        return self._table("faults", "faults.csv")

    @property
    def overall(self) -> pd.DataFrame:
        """The ``ALL`` rows, indexed by system."""
        return self.summary[self.summary["model"] == "ALL"].set_index("system")

    def table(self) -> str:
        """The table ``warmsim compare`` prints."""
        from warmsim.experiments.outputs import comparison_table
        return comparison_table(self.summary)


def config(*overrides: str, config_dir: str | Path | list | None = None, multirun: bool = False,
           command: str = "compare"):
    """The composed config for hydra ``overrides`` (e.g. ``"workload.rps=10"``), checked as the CLI
    checks them (unknown groups, keys and values are a :class:`UserError` naming them).
    ``config_dir``: user config directories in front of the shipped ones (as ``--config-dir``;
    ``./warmsim_conf`` and ``WARMSIM_CONFIG_DIR`` are read as well). ``command="run"`` checks them as
    ``warmsim run`` does (``system.<key>`` then sets the one system run)."""
    from warmsim.experiments import confpath
    from warmsim.experiments.overrides import check_overrides
    from warmsim.experiments.systems import rewrite
    from warmsim.experiments.validate import check_config
    if len(overrides) == 1 and isinstance(overrides[0], (list, tuple)):
        overrides = tuple(overrides[0])
    dirs = [] if config_dir is None else [config_dir] if isinstance(config_dir, (str, Path)) else list(config_dir)
    confpath.set_cli_dirs(dirs)
    confpath.export()
    confpath.register()
    over = rewrite([str(o) for o in overrides])
    cfg, _ = check_overrides(command, over, multirun)
    check_config(cfg)
    return cfg


def claim_dir(out: str | Path | None, command: str = "compare") -> Path:
    """``out`` created (a fresh ``outputs/api/<date>/<time>-<command>`` when None; ``-2``, ``-3`` ...
    when a run already holds it)."""
    from warmsim.experiments.rundir import claim_new_dir
    if out is None:
        out = Path("outputs") / "api" / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}-{command}"
    out = Path(out).absolute()
    if out.is_dir() and not any(out.iterdir()):
        return out
    return claim_new_dir(out, "out")


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


def simulate(cfg, systems: list[str] | None, outdir: Path, *, echo=None, strict: bool | None = None) -> Run:
    """Run ``systems`` (default ``cfg.systems``, each with ``overrides.<system>``) on one workload
    and write the run directory ``outdir`` (an existing directory; see :func:`claim_dir`).
    ``echo(line)`` gets the workload's lines before the runs start (what the builder changed)."""
    from warmsim.experiments.builder import build_setup, check_system
    from warmsim.experiments.outputs import begin_run, workload_lines, write_run
    from warmsim.experiments.runner import run_system
    from warmsim.experiments.systems import resolve
    from warmsim.experiments.validate import check_config
    check_config(cfg)
    scfgs = resolve(cfg, systems, strict=systems is None if strict is None else strict)
    for scfg in scfgs:  # every system's keys, mechanisms and policy arguments, before anything is written
        check_system(scfg, str(scfg.get("name", "?")))
    outdir = Path(outdir)
    notes: list[str] = []
    with collected_warnings(notes):
        setup = build_setup(cfg)  # bad input found here leaves no INCOMPLETE marker: nothing has started
        begin_run(outdir)
        if echo is not None:
            echo("\n".join(workload_lines(setup)))
        results = [run_system(setup, s, cfg) for s in scfgs]
    summary = write_run(outdir, results, cfg, setup, notes)
    res = load(outdir)
    res.notes = list(setup.workload_notes)
    res._tables.update(requests=pd.concat([r.requests for r in results], ignore_index=True),
                       timeline=pd.concat([r.timeline for r in results], ignore_index=True),
                       predictions=pd.concat([r.predictions for r in results], ignore_index=True))
    res.summary = summary
    res.workload_requests, res.duration_s = len(setup.workload), float(setup.workload.duration_s)
    res.cost_notes = notes  # cost-model warnings (also in report.md)
    return res


def _cfg(cfg_or_overrides, config_dir=None, command="compare"):
    if cfg_or_overrides is None:
        return config(config_dir=config_dir, command=command)
    if isinstance(cfg_or_overrides, str):
        return config(cfg_or_overrides, config_dir=config_dir, command=command)
    if isinstance(cfg_or_overrides, (list, tuple)):
        return config(*cfg_or_overrides, config_dir=config_dir, command=command)
    return cfg_or_overrides


def compare(cfg=None, systems: list[str] | None = None, out: str | Path | None = None,
            config_dir: str | Path | None = None) -> Run:
    """``warmsim compare``: every system of ``cfg.systems`` (or ``systems``) on one workload.
    ``cfg``: a config from :func:`config`, a list of overrides, or None (the default compare)."""
    cfg = _cfg(cfg, config_dir)
    return simulate(cfg, list(systems) if systems is not None else None, claim_dir(out, "compare"))


def run(cfg=None, system: str | None = None, out: str | Path | None = None,
        config_dir: str | Path | None = None) -> Run:
    """``warmsim run``: one system (``system``, default ``cfg.system.name``); ``cfg`` may be a list of
    overrides (checked as ``warmsim run`` checks them)."""
    cfg = _cfg(cfg, config_dir, "run")
    return simulate(cfg, [system or str(cfg.system.get("name"))], claim_dir(out, "run"), strict=False)


def load(path: str | Path) -> Run:
    """A run directory read back (complete runs only: the ``COMPLETE`` marker)."""
    from warmsim.experiments.outputs import MARKER, read_config, run_state
    d = Path(path)
    if not (d / "summary.csv").is_file():
        raise UserError(f"{d}: no summary.csv (not a warmsim run directory)")
    if run_state(d) == "incomplete":
        raise UserError(f"{d}: incomplete (no {MARKER} marker: interrupted, failed or still running)")
    cfg = read_config(d)
    systems = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((d / "systems").glob("*.yaml"))}
    res = Run(pd.read_csv(d / "summary.csv"), d, cfg, systems)
    wl = d / "workload.json"
    if wl.is_file():
        try:
            res.notes = list(json.loads(wl.read_text()).get("changes") or [])
        except ValueError:
            pass
    return res


def sensitivity(quick: bool = True, out: str | Path | None = None, jobs: int | None = None,
                knobs: tuple[str, ...] | None = None, experiments: tuple[str, ...] | None = None,
                reuse: bool = False, seed: int = 0, echo=None) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """``warmsim sensitivity``: each paper claim over one knob at a time (:mod:`warmsim.experiments.sensitivity`).

    Returns ``(rows, ranges, directory)``: one row per (claim, knob, value) with warmsim's number; per
    claim its default, range, whether the paper's number is inside and the knob that moves it most;
    and the directory holding ``sensitivity.csv``, ``claims.md``, the tornado figures and the runs."""
    import os

    from warmsim.experiments import sensitivity as sens
    d = claim_dir(out, "sensitivity")
    p = sens.plan(d, quick=quick, seed=seed, knobs=knobs, experiments=experiments)
    rows, ranges, _ = sens.run(p, parallel=jobs or os.cpu_count() or 1, reuse=reuse,
                               echo=echo or (lambda line: None))
    return rows, ranges, d
