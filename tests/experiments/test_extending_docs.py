"""docs/extending.md's "Write a prewarmer" runs as written (issue 22 §2): its files, its command, and
the numbers the text states; and the traps it names are caught (a placer whose replicas no activator
takes over is warned about, a bad knob is one line)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.exe import warmsim_exe

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def section() -> str:
    text = DOC.read_text()
    start = text.index("## Write a prewarmer")
    return text[start:text.index("\n## ", start + 1)]


def files_and_command(sec: str) -> tuple[dict[str, str], list[str]]:
    files, command = {}, None
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", sec, re.S):
        first = body.splitlines()[0]
        if lang in ("python", "yaml"):
            path = first.lstrip("# ").strip()
            assert path.startswith("warmsim_conf/"), first
            files[path] = body
        elif lang == "bash":
            command = shlex.split(body.replace("\\\n", " "))
    assert files and command and command[0] == "warmsim"
    return files, command[1:]


def warmsim(*args, cwd):
    exe = warmsim_exe()
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def documented_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prewarmer")
    files, command = files_and_command(section())
    for rel, body in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(body)
    p = warmsim(*command, f"hydra.run.dir={tmp / 'out'}", cwd=tmp)
    assert p.returncode == 0, p.stderr
    return tmp, p


def test_the_prewarmer_example_runs_and_takes_its_replicas_over(documented_run):
    tmp, p = documented_run
    assert f"config dirs: {tmp / 'warmsim_conf'}" in p.stdout
    s = pd.read_csv(tmp / "out" / "summary.csv").set_index(["system", "model"])
    od, spare = s.loc[("ondemand", "ALL")], s.loc[("spare", "ALL")]
    # the numbers the section states
    assert (od.requests, od.cold_starts, od.prewarm_hits) == (31, 11, 0)
    assert (spare.cold_starts, spare.prewarm_hits) == (0, 11)
    assert round(od.ttft_p99_s, 1) == 12.6 and round(spare.ttft_p99_s, 1) == 3.4
    assert "warning:" not in p.stderr  # its activator adopts replicas: no warning


def test_a_placer_next_to_an_activator_that_never_adopts_is_warned_about(documented_run):
    tmp, _ = documented_run
    p = warmsim("run", "system=ondemand", "cluster=tiny", "models=tiny1", "workload=synthetic",
                "workload.total_rate=0.02", "workload.duration_s=300", "workload.tokens_from=null",
                "+system.placer={_target_: myprewarm.OneSparePlacer}", f"hydra.run.dir={tmp / 'warned'}", cwd=tmp)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == 1 and "FirstFitActivator never takes one over" in lines[0] and "0 prewarm hits" in lines[0]
    assert pd.read_csv(tmp / "warned" / "summary.csv").prewarm_hits.max() == 0  # what the warning says


def test_the_placer_knobs_are_bounded_where_they_are_read(documented_run):
    tmp, _ = documented_run
    p = warmsim("run", "system=spare", "cluster=tiny", "models=tiny1", "system.placer.period_s=0", cwd=tmp)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "config key placer.period_s: got 0; allowed: a number in [0.001, 86400]" in p.stderr
