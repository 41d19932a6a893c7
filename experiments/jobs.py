"""A list of warmsim runs, each through the installed ``warmsim`` command, run a few at a time.

Each job is one ``warmsim compare`` or ``warmsim run`` subprocess writing its run directory; its
console output goes to ``<run dir>.log``. ``run_all`` runs them ``parallel`` at a time, reuses a
complete run of exactly the same command line when asked (so a stopped batch resumes), and prints a
progress line per finished job. ``warmsim figures`` and ``warmsim sensitivity`` use it.
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
