"""Results are atomic (issue 13): files renamed into place, a COMPLETE marker written last, SIGTERM
handled like SIGINT, `report` / `figures` skip incomplete runs, simultaneous runs never share a
directory, and a sweep survives a bad job (and skips complete jobs when re-run)."""

from __future__ import annotations

import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from tests.exe import warmsim_exe
from warmsim.experiments import outputs

TINY = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=120", "workload.total_rate=1",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]


def _exe() -> str:
    exe = warmsim_exe()
    return exe


def warmsim(*args, cwd):
    return subprocess.run([_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _compose(overrides):
    from hydra import compose, initialize_config_dir

    from warmsim.experiments.builder import CONF_DIR
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=overrides)


def test_a_write_interrupted_after_the_first_file_leaves_no_marker_and_report_skips_it(tmp_path, monkeypatch):
    from warmsim.experiments.commands import run_one
    from warmsim.figures.tables import find_runs

    good = tmp_path / "runs" / "good"
    assert warmsim("run", *TINY, "system=static", f"hydra.run.dir={good}", cwd=tmp_path).returncode == 0
    assert outputs.run_state(good) == "complete"

    real = outputs.atomic_write
    calls = []

    def killed_after_the_first_file(path, write):
        calls.append(path.name)
        if len(calls) == 1:
            return real(path, write)
        # the "kill" lands while the second file is half written under its temporary name
        return real(path, lambda tmp: (tmp.write_text("half a fi"), (_ for _ in ()).throw(KeyboardInterrupt()))[0])

    monkeypatch.setattr(outputs, "atomic_write", killed_after_the_first_file)
    bad = tmp_path / "runs" / "bad"
    with pytest.raises(KeyboardInterrupt):
        run_one(_compose([*TINY, "system=static"]), bad)
    monkeypatch.undo()

    assert calls[0] == "summary.csv" and len(calls) == 2
    assert (bad / "summary.csv").is_file() and not (bad / calls[1]).exists()
    assert not (bad / outputs.MARKER).exists() and outputs.run_state(bad) == "incomplete"
    assert not [p for p in bad.iterdir() if ".tmp-" in p.name]

    p = warmsim("report", str(tmp_path / "runs"), "--out", str(tmp_path / "all.csv"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("\n") == 1 and "skipping" in p.stderr and str(bad) in p.stderr
    assert list(pd.read_csv(tmp_path / "all.csv").run) == [str(good)]
    assert [r.path for r in find_runs(tmp_path / "runs")] == [good]


def test_a_complete_run_is_marked_and_a_rerun_into_it_drops_the_old_marker_first(tmp_path):
    out = tmp_path / "r"
    assert warmsim("run", *TINY, "system=static", f"hydra.run.dir={out}", cwd=tmp_path).returncode == 0
    marker = yaml.safe_load((out / outputs.MARKER).read_text())
    assert {"summary.csv", "requests.parquet", "timeline.parquet", "config.yaml", "report.md"} <= set(marker["files"])
    assert not (out / outputs.PARTIAL).exists()
    outputs.begin_run(out)
    assert outputs.run_state(out) == "incomplete"


@pytest.mark.parametrize("sig,status,word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_the_simulation_exits_128_plus_its_number_with_one_line(tmp_path, sig, status, word):
    out = tmp_path / "r"
    long = [*TINY, "workload.duration_s=7200", "workload.total_rate=40"]
    # The child starts with SIGINT's default disposition, as from a terminal: a test worker that ignores
    # SIGINT (its parent's choice) would pass that on, and Python then installs no Ctrl-C handler.
    p = subprocess.Popen([_exe(), "run", *long, "system=static", f"hydra.run.dir={out}"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (out / outputs.PARTIAL).exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the simulation
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    assert err.count("\n") == 1 and word in err and "Traceback" not in err, err
    assert not (out / outputs.MARKER).exists() and outputs.run_state(out) == "incomplete"


def test_two_runs_started_together_get_their_own_directories_and_labels(tmp_path):
    procs = [subprocess.Popen([_exe(), "run", *TINY, "system=static", f"seed={s}"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    dirs = sorted(d for d in (tmp_path / "outputs").glob("*/*") if d.is_dir())
    assert len(dirs) == 2 and all(outputs.run_state(d) == "complete" for d in dirs)
    seeds = sorted(yaml.safe_load((d / "config.yaml").read_text())["seed"] for d in dirs)
    assert seeds == [1, 2]
    p = warmsim("report", "outputs", "--out", "all.csv", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    merged = pd.read_csv(tmp_path / "all.csv")
    for run, over in zip(merged.run, merged.overrides):  # each run labelled with its own overrides
        assert f"seed={yaml.safe_load((tmp_path / run / 'config.yaml').read_text())['seed']}" in over


def test_the_same_second_gives_a_suffixed_directory(tmp_path):
    from warmsim.experiments.rundir import claim_new_dir
    a = claim_new_dir(tmp_path / "12-00-00-run", "hydra.run.dir")
    b = claim_new_dir(tmp_path / "12-00-00-run", "hydra.run.dir")
    assert a != b and a.is_dir() and b.is_dir() and b.name == "12-00-00-run-2"


def test_a_sweep_with_a_bad_job_runs_the_others_lists_the_failure_and_skips_complete_jobs_when_rerun(tmp_path):
    args = ["run", "-m", *TINY, "system=static", "cluster.gpu_hbm_gib=80,10", f"hydra.sweep.dir={tmp_path / 'sw'}"]
    p = warmsim(*args, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    assert outputs.run_state(tmp_path / "sw" / "0") == "complete"
    assert outputs.run_state(tmp_path / "sw" / "1") == "incomplete"
    assert "1 of 2 sweep job(s) failed" in p.stderr and "cluster.gpu_hbm_gib=10" in p.stderr.splitlines()[-1]
    first = (tmp_path / "sw" / "0" / "summary.csv").stat().st_mtime_ns
    p = warmsim(*args, cwd=tmp_path)
    assert p.returncode == 2 and "skipped" in p.stdout
    assert (tmp_path / "sw" / "0" / "summary.csv").stat().st_mtime_ns == first


def test_the_sweep_status_is_2_when_every_failure_was_bad_input_and_1_otherwise(tmp_path, capsys):
    import json

    from warmsim.experiments.cli import FAILED, _sweep_report
    for name, status in (("0", None), ("1", 2), ("2", 1)):
        d = tmp_path / name
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text("[]\n")
        if status is None:
            (d / outputs.MARKER).write_text("{}\n")
        else:
            (d / FAILED).write_text(json.dumps({"status": status, "error": f"err{name}", "label": f"job {name}"}))
    assert _sweep_report(tmp_path, 0) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["warmsim: 2 of 3 sweep job(s) failed:", "  job 1: err1", "  job 2: err2"]
    (tmp_path / "2" / FAILED).unlink()
    (tmp_path / "2" / outputs.MARKER).write_text("{}\n")
    assert _sweep_report(tmp_path, 0) == 2
