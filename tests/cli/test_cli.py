"""The installed ``warmsim`` command, end to end, as a user runs it."""

import subprocess

import pandas as pd
import pytest

from tests.exe import warmsim_exe
from warmsim.experiments.summary import COLUMNS

TINY = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=120", "workload.total_rate=1",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]


def warmsim(*args, cwd):
    exe = warmsim_exe()
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_compare_writes_the_summary_contract(tmp_path):
    out = tmp_path / "run"
    p = warmsim("compare", *TINY, "systems=[static,ondemand]", f"hydra.run.dir={out}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "static" in p.stdout and "ondemand" in p.stdout
    s = pd.read_csv(out / "summary.csv")
    assert list(s.columns) == COLUMNS
    assert sorted(zip(s.system, s.model)) == sorted(
        [(sys, m) for sys in ("static", "ondemand") for m in ("llama-2-7b", "ALL")])
    req = pd.read_parquet(out / "requests.parquet")
    assert {"arrival_s", "first_token_s", "finish_s", "status", "start_kind", "instance", "gpus"} <= set(req.columns)
    assert set(req.status) <= {"completed", "dropped"}
    assert (out / "timeline.parquet").is_file() and (out / "report.md").is_file()
    allrows = s[s.model == "ALL"].set_index("system")
    assert allrows.loc["static", "cold_starts"] == 0
    assert allrows.loc["ondemand", "cold_starts"] >= 1
    # the default profile: a real H100 measured by an external script (its provenance says which tables)
    assert (s.profile == "h100_reference").all() and s.profile_measured.all()
    assert "measured by an external script" in (out / "report.md").read_text()


@pytest.mark.parametrize("override,needle", [
    ("cluster.gpu_hbm_gib=16", "needs"),                 # a model that does not fit its TP group
    ("cluster.gpus_per_node=2", "cannot span nodes"),    # a TP group larger than a node
    ("systems=[static,nope]", "unknown system 'nope'"),
    ("system=nope", "unknown system 'nope'"),
    ("cluster=nope", "unknown cluster 'nope'"),
])
def test_bad_configuration_exits_2_with_one_clear_line(tmp_path, override, needle):
    args = ["models=paper4"] if "cluster." in override else []
    p = warmsim("compare", "workload.duration_s=30", *args, override, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    err = [line for line in p.stderr.splitlines() if line.startswith("warmsim: error:")]
    assert len(err) == 1 and needle in err[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "r" / "summary.csv").exists()


def test_run_single_system_and_unknown_command(tmp_path):
    p = warmsim("run", *TINY, "system=static", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert len(pd.read_csv(tmp_path / "r" / "summary.csv")) == 2
    p = warmsim("frobnicate", cwd=tmp_path)
    assert p.returncode == 2 and "unknown command" in p.stderr


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]])
def test_run_multirun_sweeps_write_one_directory_per_job(tmp_path, launcher):
    p = warmsim("run", "-m", *TINY, "system=static,ondemand", *launcher, f"hydra.sweep.dir={tmp_path / 'sw'}",
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    systems = sorted(pd.read_csv(tmp_path / "sw" / str(j) / "summary.csv").system[0] for j in (0, 1))
    assert systems == ["ondemand", "static"]
    if launcher:
        return
    # `warmsim report` merges the sweep into one table, naming each job's overrides
    p = warmsim("report", str(tmp_path / "sw"), "--out", str(tmp_path / "all.csv"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    merged = pd.read_csv(tmp_path / "all.csv")
    assert sorted(merged.system) == ["ondemand", "static"]
    assert merged.overrides.str.contains("system=").all()
    p = warmsim("report", str(tmp_path / "nothing-here"), cwd=tmp_path)
    assert p.returncode == 2 and "no such directory" in p.stderr


def test_warmup_leaves_early_requests_out_of_the_statistics(tmp_path):
    base = [*TINY, "systems=[ondemand]"]
    p0 = warmsim("compare", *base, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    p1 = warmsim("compare", *base, "metrics.warmup_s=60", f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert p0.returncode == 0 and p1.returncode == 0, p0.stderr + p1.stderr
    a = pd.read_csv(tmp_path / "a" / "summary.csv").set_index("model").loc["ALL"]
    b = pd.read_csv(tmp_path / "b" / "summary.csv").set_index("model").loc["ALL"]
    req = pd.read_parquet(tmp_path / "b" / "requests.parquet")  # the request table stays whole
    assert len(req) == a.requests and b.requests == (req.arrival_s >= 60).sum() < a.requests
    assert b.cold_starts == a.cold_starts  # counters cover the whole run
    assert b.ttft_p99_s < a.ttft_p99_s  # the cold start's slow first requests were in the warm-up


def test_calibrate_commands_as_a_user_runs_them(tmp_path):
    p = warmsim("calibrate", "--check", "h100_analytic", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "sanity check of profile h100_analytic (NOT measured)" in p.stdout and "0 outside" in p.stdout
    p = warmsim("calibrate", "--device", "fake", "--quick", "--out", "dry", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "10 sections ok, 0 failed" in p.stdout and (tmp_path / "dry" / "meta.json").is_file()
    p = warmsim("estimate", "model=llama-2-7b", f"gpu_profile={tmp_path / 'dry'}", "source=host_pinned",
                "prompt_tokens=1024", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "TTFT of first request" in p.stdout and "NOT measured" in p.stdout
    p = warmsim("calibrate", "--check", "no_such_profile", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no_such_profile" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("args", [["trace", "frobnicate"], ["report", "--bogus"], ["bench", "--bogus"],
                                  ["figures", "--bogus"], ["calibrate", "--device", "tpu"]])
def test_bad_arguments_of_any_command_are_one_line_and_exit_2(tmp_path, args):
    p = warmsim(*args, cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith(f"warmsim: error: warmsim {args[0]}: "), p.stderr


@pytest.mark.parametrize("system,override,needle", [
    ("ondemand", "system.activator.source=floppy", "FirstFitActivator.source: unknown weight source 'floppy'"),
    ("peerload", "system.activator.fallback_source=peer_nvlink", "PeerActivator.fallback_source"),
    ("warmserve", "system.placer.source=prewarmed", "EvictAwarePlacer.source"),
])
def test_an_unknown_weight_source_in_a_policy_is_one_line_and_exit_2(tmp_path, system, override, needle):
    p = warmsim("run", *TINY, f"system={system}", override, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.count("\n") == 1 and needle in p.stderr, p.stderr
    assert not (tmp_path / "r" / "summary.csv").exists()


def test_without_the_console_script_the_tests_say_so(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="console script is not on PATH: install the package"):
        warmsim_exe()
