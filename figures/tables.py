"""Find run directories and read their result tables (the only inputs of the figures).

A run directory is any folder holding ``summary.csv`` (written by ``warmsim compare`` or
``warmsim run``); its ``config.yaml`` says which workload, request rate and cluster produced it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from warmsim.experiments.outputs import MARKER, read_config, run_state
from warmsim.experiments.report_table import ci95, read_summary
from warmsim.sim.errors import UserError


@dataclass
class Run:
    """One run directory: its path, the systems it holds and the workload knobs that matter here."""

    path: Path
    systems: list[str]
    workload: str          # "<kind>:<trace>" of the workload config
    rps: float             # workload.rps (NaN when the workload has no such knob)
    duration_s: float
    seed: int
    gpus_per_node: int
    fast_ttft_s: float
    unfinished_ttft_s: float
    burstiness_cv: float = float("nan")  # workload.burstiness_cv (NaN: the trace's own arrivals)
    cfg: dict = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def bursty(self) -> bool:
        """Its arrivals were re-timed (``workload.burstiness_cv`` set)."""
        return self.burstiness_cv == self.burstiness_cv

    @property
    def group(self) -> tuple:
        """Runs with the same group are comparable (same workload, length and seed)."""
        return (self.workload, self.duration_s, self.seed)

    def table(self, name: str) -> pd.DataFrame:
        """``summary``, ``requests``, ``timeline`` or ``predictions`` of this run (read once)."""
        if name not in self._cache:
            files = {"summary": "summary.csv", "requests": "requests.parquet",
                     "timeline": "timeline.parquet", "predictions": "predictions.csv"}
            p = self.path / files[name]
            if not p.is_file():
                raise UserError(f"{p}: missing (needed by a figure)")
            try:
                self._cache[name] = pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
            except Exception as e:  # noqa: BLE001 - a truncated or foreign file
                raise UserError(f"{p}: not readable ({' '.join(str(e).split())[:200]})") from None
        return self._cache[name]


def _num(x, default=float("nan")) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


#: summary.csv columns every figure set reads (checked when a run is found: a folder without them is one
#: line naming the file and the column, not a figure that fails halfway).
FIGURE_COLUMNS = ("system", "model", "ttft_p99_s", "slo_attainment")


def read_run(path: Path) -> Run:
    """The :class:`Run` of directory ``path`` (must hold ``summary.csv``)."""
    path = Path(path)
    cfg = read_config(path)
    wl = cfg.get("workload") or {}
    systems = list(dict.fromkeys(read_summary(path / "summary.csv", FIGURE_COLUMNS)["system"]))  # checked up front
    metrics = cfg.get("metrics") or {}
    return Run(path=path, systems=systems, workload=f"{wl.get('kind', '?')}:{wl.get('trace', '')}",
               rps=_num(wl.get("rps")), duration_s=_num(wl.get("duration_s")), seed=int(_num(cfg.get("seed"), 0)),
               gpus_per_node=int(_num((cfg.get("cluster") or {}).get("gpus_per_node"), 8)),
               fast_ttft_s=_num(metrics.get("fast_ttft_s"), 0.1),
               unfinished_ttft_s=_num(metrics.get("unfinished_ttft_s"), 999.0),
               burstiness_cv=_num(wl.get("burstiness_cv")), cfg=cfg)


def find_runs(root: Path) -> list[Run]:
    """Every run directory under ``root`` (sorted by path), skipping, with a one-line note each, those
    warmsim did not finish writing (no ``COMPLETE`` marker); UserError if none is left."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--results {root}: not a directory")
    found = sorted(Path(d) for d, _, files in os.walk(root, followlinks=True) if "summary.csv" in files)
    runs = []
    for d in found:
        if run_state(d) == "incomplete":
            print(f"figures: skipping {d}: incomplete (no {MARKER} marker: interrupted, failed or still running)")
            continue
        runs.append(read_run(d))
    if not runs:
        raise UserError(f"--results {root}: no run directory (no summary.csv with its {MARKER} marker "
                        "below it); run `warmsim figures` without --results, or `warmsim compare`, first")
    return runs


def main_group(runs: list[Run]) -> list[Run]:
    """The runs of the most common setup (workload and length; every seed); the others are ignored
    (with a note). Sweeps average over the seeds (:func:`sweep_summary`); single-run figures take
    one seed (``warmsim figures --seed``)."""
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.group[:2], []).append(r)
    best = max(groups.values(), key=len)
    for g, rs in groups.items():
        if rs is not best:
            print(f"figures: ignoring {len(rs)} run(s) of another setup {g} (e.g. {rs[0].path})")
    return best


def runs_at(runs: list[Run], rps: float | None) -> list[Run]:
    """Runs at request rate ``rps`` (None: all runs if they share one rate)."""
    rates = sorted({r.rps for r in runs if r.rps == r.rps})
    if rps is None or not rates:
        return runs
    sel = [r for r in runs if r.rps == rps]
    if not sel:
        raise UserError(f"no run at workload.rps={rps:g} (available: {', '.join(f'{x:g}' for x in rates)}); "
                        "pick one with --rps")
    return sel


def provider(runs: list[Run], system: str) -> Run | None:
    """The first run (by path) holding ``system``."""
    return next((r for r in runs if system in r.systems), None)


def gather(runs: list[Run], name: str, systems: list[str] | None = None) -> pd.DataFrame:
    """Rows of table ``name`` for each system, each system taken from its first providing run, with
    that run's ``rps`` as a column. Empty if no run holds any of ``systems``."""
    wanted = systems if systems is not None else list(dict.fromkeys(s for r in runs for s in r.systems))
    parts = []
    for s in wanted:
        r = provider(runs, s)
        if r is None:
            continue
        t = r.table(name)
        t = t[t["system"] == s].copy()
        t["rps"] = r.rps
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


#: Columns of :func:`sweep_summary` that get a 95% confidence interval (``<column>_ci``) over seeds.
CI_COLUMNS = ("ttft_p99_s", "slo_attainment", "mean_gpus_busy", "gpu_hours")


def sweep_summary(runs: list[Run], systems: list[str]) -> pd.DataFrame:
    """summary rows of ``systems`` at every request rate found, averaged over the runs (seeds) at
    that rate: numeric columns are means, ``seeds`` counts the runs, ``<column>_ci`` is the half-width
    of the 95% confidence interval (Student t; NaN for one seed) of :data:`CI_COLUMNS`."""
    parts = []
    for rps in sorted({r.rps for r in runs if r.rps == r.rps}):
        at = [r for r in runs if r.rps == rps]
        for s in systems:
            rows = [r.table("summary") for r in at if s in r.systems]
            if not rows:
                continue
            t = pd.concat([x[x["system"] == s] for x in rows], ignore_index=True)
            out = []
            for model, g in t.groupby("model", sort=False):
                row = {c: (g[c].mean() if pd.api.types.is_numeric_dtype(g[c]) and not pd.api.types.is_bool_dtype(g[c])
                           else g[c].iloc[0]) for c in g.columns}
                n = len(g)
                for c in CI_COLUMNS:
                    if c in g:
                        x = g[c].dropna().to_numpy(dtype=float)
                        row[f"{c}_ci"] = ci95(x)
                row.update(model=model, seeds=n, rps=rps)
                out.append(row)
            parts.append(pd.DataFrame(out))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
