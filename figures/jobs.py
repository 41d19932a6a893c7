"""The experiments behind the figures, run through the installed ``warmsim`` command.

Each job is one ``warmsim compare`` or ``warmsim run`` subprocess writing a run directory under
``<out>/runs/``; its console output goes to ``<run dir>.log``. Jobs run ``jobs`` at a time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from warmsim.experiments.outputs import MARKER


@dataclass
class Job:
    """One warmsim invocation: ``command`` (compare | run), hydra overrides and its run directory."""

    name: str
    command: str
    overrides: list[str]
    run_dir: Path
    rc: int | None = None
    wall_s: float = 0.0
    reused: bool = False
    argv: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        """Where the job's stdout and stderr go."""
        return self.run_dir.with_suffix(".log")


def warmsim_argv() -> list[str]:
    """The installed console script, or this interpreter running the same entry point."""
    exe = shutil.which("warmsim")
    return [exe] if exe else [sys.executable, "-m", "warmsim.experiments.cli"]


def plan(out: Path, *, workload: str, headline_rps: float, rates: list[float], main_systems: list[str],
         ablation_systems: list[str], ablation_rps: float, duration_s: float | None, seed: int,
         need: set[str], bursty: tuple[float, float] | None = None,
         capacity: tuple[list[float], list[str]] | None = None) -> list[Job]:
    """The jobs for the experiment sets in ``need`` (``headline``, ``load``, ``ablation``,
    ``ablation_bursty``).

    headline: one ``warmsim compare`` of ``main_systems`` at ``headline_rps``.
    load: one ``warmsim run`` per (system, rate) for the other rates (the headline run is the sweep's
    point at ``headline_rps``). ablation: one ``warmsim run`` per ablation system (and WarmServe) at
    ``ablation_rps``, except those the headline or load runs already hold at that rate.
    ablation_bursty: the same systems with bursty arrivals, ``bursty = (burstiness_cv, rps)``.
    ``capacity = (rates, systems)`` adds, with ``load``, a run of each of those systems at each of those
    rates that the load sweep lacks (the finer grid around WarmServe's and MuxServe's knees).
    """
    runs = out / "runs"
    common = [f"workload={workload}", f"seed={seed}", "progress=false"]
    if duration_s is not None:
        common.append(f"workload.duration_s={duration_s:g}")
    jobs: list[Job] = []
    if need & {"headline", "load"}:
        jobs.append(Job("headline", "compare", common + [f"workload.rps={headline_rps:g}",
                                                         f"systems=[{','.join(main_systems)}]"], runs / "headline"))
    if "load" in need:
        for r in rates:
            if r == headline_rps:
                continue
            for s in main_systems:
                jobs.append(Job(f"load rps={r:g} {s}", "run", common + [f"workload.rps={r:g}", f"system={s}"],
                                runs / "load" / f"rps{r:g}" / s))
    if "load" in need and capacity is not None:
        cap_rates, cap_systems = capacity
        for r in cap_rates:
            for s in cap_systems:
                if r == headline_rps or r in rates:
                    continue
                jobs.append(Job(f"load rps={r:g} {s}", "run", common + [f"workload.rps={r:g}", f"system={s}"],
                                runs / "load" / f"rps{r:g}" / s))
    if "ablation" in need:
        have = {(s, headline_rps) for s in main_systems} if need & {"headline", "load"} else set()
        if "load" in need:
            have |= {(s, r) for s in main_systems for r in rates}
        for s in dict.fromkeys(["warmserve", *ablation_systems]):
            if (s, ablation_rps) in have:
                continue
            jobs.append(Job(f"ablation {s}", "run", common + [f"workload.rps={ablation_rps:g}", f"system={s}"],
                            runs / "ablation" / s))
    if "ablation_bursty" in need and bursty is not None:
        cv, rps = bursty
        for s in dict.fromkeys(["warmserve", *ablation_systems]):
            jobs.append(Job(f"ablation bursty {s}", "run", common + [f"workload.rps={rps:g}",
                                                                     f"workload.burstiness_cv={cv:g}", f"system={s}"],
                            runs / "ablation_bursty" / s))
    # longest first (cost grows with the rate) so that parallel workers finish together
    return sorted(jobs, key=lambda j: -_rate(j))


def _rate(job: Job) -> float:
    rate = next((float(o.split("=", 1)[1]) for o in job.overrides if o.startswith("workload.rps=")), 0.0)
    return rate * (4 if job.command == "compare" else 1)


def _matches(job: Job) -> bool:
    """Whether ``job.run_dir`` already holds a complete run (its ``COMPLETE`` marker) of exactly
    ``job.argv`` (for --reuse)."""
    if not (job.run_dir / MARKER).is_file() or not job.log.is_file():
        return False
    with open(job.log) as f:
        return f.readline().rstrip("\n") == "$ " + shlex.join(job.argv)


def run_one(job: Job, argv0: list[str], reuse: bool) -> Job:
    """Run ``job`` (or keep its existing result when ``reuse`` and it matches)."""
    job.argv = argv0 + [job.command] + job.overrides + [f"hydra.run.dir={job.run_dir}"]
    if reuse and _matches(job):
        job.rc, job.reused = 0, True
        return job
    if job.run_dir.exists():
        shutil.rmtree(job.run_dir)
    job.run_dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(job.log, "w") as log:
        log.write("$ " + shlex.join(job.argv) + "\n")
        log.flush()
        p = subprocess.run(job.argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MPLBACKEND": "Agg"})
    job.wall_s = time.perf_counter() - t0
    job.rc = p.returncode
    return job


def progress_line(done: int, total: int, elapsed_s: float) -> str:
    """``done/total jobs, elapsed, ETA`` (the ETA from the mean time per finished job)."""
    def fmt(s: float) -> str:
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"
    eta = elapsed_s / done * (total - done) if done else float("nan")
    return (f"{done}/{total} jobs done, {fmt(elapsed_s)} elapsed"
            + (f", ETA {fmt(eta)}" if done < total and eta == eta else ""))


def run_all(jobs: list[Job], *, parallel: int, reuse: bool = False, echo=print) -> list[Job]:
    """Run ``jobs`` with ``parallel`` workers; ``echo`` gets one line per finished job."""
    import time
    argv0 = warmsim_argv()
    n = len(jobs)
    done = 0
    t0 = time.perf_counter()

    def one(job: Job) -> Job:
        nonlocal done
        run_one(job, argv0, reuse)
        done += 1
        state = "reused" if job.reused else ("ok" if job.rc == 0 else f"FAILED (exit {job.rc}, see {job.log})")
        elapsed = time.perf_counter() - t0
        echo(f"  [{done}/{n}] {job.name}: {state}" + ("" if job.reused else f" in {job.wall_s:.1f} s")
             + f"; {progress_line(done, n, elapsed)}")
        return job

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, jobs))


def failure_line(job: Job) -> str:
    """The last meaningful line of a failed job's log (its error message)."""
    try:
        lines = [ln for ln in job.log.read_text().splitlines() if ln.strip()]
    except OSError:
        return "no log"
    err = [ln for ln in lines if "error" in ln.lower()]
    return (err[0] if err else lines[-1] if lines else "no output")[:300]
