"""Bad input to the installed ``warmsim``, class by class (issue 13): exit status 2, exactly one line
on stderr naming the key, value or file, no traceback, and nothing left that looks complete.

Every case fails before a simulation starts, so each costs one process start (about a second)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.exe import warmsim_exe

TINY = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=60", "workload.total_rate=1",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]
EST = ["gpu_profile=h100_analytic", "source=host_pinned"]
SHIPPED = Path(__file__).resolve().parents[2] / "calibrate" / "profiles" / "h100_analytic"


def warmsim(*args, cwd):
    exe = warmsim_exe()
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path):
    """A folder with the odd things the cases point at: a file where a folder should be, and
    profiles whose meta.json is a number, not UTF-8, or fine but with no tables."""
    (tmp_path / "afile").write_text("not a directory\n")
    for name, meta in (("meta_number", b"5\n"), ("meta_latin1", "name: caf\xe9".encode("latin-1"))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_bytes(meta)
    (tmp_path / "no_tables").mkdir()
    (tmp_path / "no_tables" / "meta.json").write_text(json.dumps(json.loads((SHIPPED / "meta.json").read_text())))
    return tmp_path


RUN = ["run", *TINY, "system=static"]

CASES = [
    ("bench with an unknown scenario", ["bench", "--only", "nope"], "--only nope"),
    ("faults with an unknown kind", [*RUN, "faults.events=[{kind: meteor, at_s: 1}]"], "faults.events[0].kind"),
    ("faults on a GPU the cluster lacks", [*RUN, "faults.events=[{kind: gpu_down, gpu: 99, at_s: 1}]"],
     "faults.events[0].gpu"),
    # --- output locations
    ("run dir under a file", [*RUN, "hydra.run.dir=afile/run"], "hydra.run.dir=afile/run"),
    ("run dir empty", [*RUN, "hydra.run.dir="], "hydra.run.dir: empty"),
    ("run dir in /proc", [*RUN, "hydra.run.dir=/proc/warmsim-nope/run"], "hydra.run.dir"),
    ("sweep dir under a file", ["run", "-m", *TINY, "system=static,ondemand", "hydra.sweep.dir=afile/sw"],
     "hydra.sweep.dir=afile/sw"),
    ("trace plot --out under a file", ["trace", "plot", "azure2023_conv", "--duration", "60", "--out", "afile/x.png"],
     "--out afile/x.png"),
    ("report --out under a file", ["report", ".", "--out", "afile/all.csv"], "--out afile/all.csv"),
    ("report --out is a directory", ["report", ".", "--out", "."], "is a directory"),
    ("calibrate --out under a file", ["calibrate", "--device", "fake", "--quick", "--out", "afile/p"], "--out afile/p"),
    ("figures --out under a file", ["figures", "--results", ".", "--out", "afile/f"], "--out"),
    ("trace --bin 0", ["trace", "describe", "azure2023_conv", "--bin", "0"], "--bin: got 0"),
    ("trace --start nan", ["trace", "describe", "azure2023_conv", "--start", "nan"], "--start: got nan"),
    # --- top-level keys
    ("seed=-1", [*RUN, "seed=-1"], "config key seed: got -1"),
    ("seed=abc", [*RUN, "seed=abc"], "config key seed: got 'abc'"),
    ("systems=5", ["compare", *TINY, "systems=5"], "config key systems: got 5"),
    # --- numbers, one per group
    ("cluster.nodes=inf", [*RUN, "cluster.nodes=inf"], "cluster.nodes: got inf"),
    ("cluster.host_cache_gib<0", [*RUN, "cluster.host_cache_gib=-1"], "cluster.host_cache_gib: got -1"),
    ("workload.rate_scale=1e7", ["run", "system=static", "cluster=tiny", "models=tiny1", "workload=mapped_azure_conv",
                                 "workload.rate_scale=1e7"], "workload.rate_scale: got 10000000.0"),
    ("workload.alpha=nan", [*RUN, "workload.alpha=nan"], "workload.alpha: got nan"),
    ("workload huge tokens", [*RUN, "workload.prompt_tokens=1000000000000000"], "workload.prompt_tokens"),
    ("workload too many requests", [*RUN, "workload.total_rate=100000", "workload.duration_s=100000"], "requests"),
    ("engine.max_num_seqs=0", [*RUN, "engine.max_num_seqs=0"], "engine.max_num_seqs: got 0"),
    ("sim.drain_s<0", [*RUN, "sim.drain_s=-1"], "sim.drain_s: got -1"),
    ("metrics.warmup_s>run", [*RUN, "metrics.warmup_s=600"], "metrics.warmup_s: got 600"),
    ("slo.ttft_s<0", [*RUN, "slo.ttft_s=-0.5"], "slo.ttft_s: got -0.5"),
    ("cost constant <0", [*RUN, "cost=constant", "cost.alloc=-1"], "cost.alloc: got -1"),
    ("tp=3 on 32 heads", [*RUN, "models.0.tp=3"], "32 attention heads"),
    # --- unknown keys, including +key
    ("+faults=gpu_down", [*RUN, "+faults=gpu_down"], "faults"),
    ("+cluster.bogus", [*RUN, "+cluster.bogus=1"], "cluster.bogus"),
    ("+system.bogus", [*RUN, "+system.bogus=1"], "system.bogus"),
    ("cluster.bogus", [*RUN, "cluster.bogus=1"], "bogus"),
    # --- estimate shares compare's model/cluster checks
    ("estimate 70B on one GPU", ["estimate", "model=llama-2-70b", *EST, "prompt_tokens=128"], "needs"),
    ("estimate tp=3", ["estimate", "model=llama-2-7b", *EST, "prompt_tokens=128", "tp=3"], "attention heads"),
    ("estimate tp=1024", ["estimate", "model=llama-2-70b", *EST, "prompt_tokens=128", "tp=1024"], "tp: got 1024"),
    ("estimate 1e12 prompt", ["estimate", "model=llama-2-7b", *EST, "prompt_tokens=1000000000000"], "prompt_tokens"),
    # --- profiles validated on load
    ("meta.json a number", ["calibrate", "--check", "meta_number"], "meta_number/meta.json"),
    ("meta.json not UTF-8", ["calibrate", "--check", "meta_latin1"], "not UTF-8"),
    ("profile with no tables", ["calibrate", "--check", "no_tables"], "no tables"),
    ("estimate on a bad profile", ["estimate", "model=llama-2-7b", "gpu_profile=meta_number", "source=host_pinned",
                                   "prompt_tokens=128"], "meta_number/meta.json"),
    # --- policy knobs: one schema with the config keys (issue 22): negative, zero, NaN, wrong type
    ("router max_inflight<0", [*RUN, "system.router.max_inflight=-1"], "config key router.max_inflight: got -1"),
    ("static headroom 0", [*RUN, "system.sizing.headroom=0"], "config key sizing.headroom: got 0"),
    ("autoscaler up 0 (was a ZeroDivisionError)", ["run", *TINY, "system=ondemand", "system.autoscaler.up=0"],
     "config key autoscaler.up: got 0"),
    ("kv per instance 0 (was a ZeroDivisionError)", ["run", *TINY, "system=warmserve",
                                                     "system.kv_policy.per_instance=0"], "kv_policy.per_instance: got 0"),
    ("placer period 0 (was a hang)", ["run", *TINY, "system=warmserve", "system.placer.period_s=0"],
     "placer.period_s: got 0"),
    ("predictor decay nan", ["run", *TINY, "system=warmserve", "system.predictor.decay=nan"], "predictor.decay: got nan"),
    ("static instances of an unknown model", [*RUN, "system.initial.instances={nope: 1}"], "unknown model(s) nope"),
    ("unknown mechanism", [*RUN, "+system.mechanisms.engine_prewarmx=true"], "unknown mechanism 'engine_prewarmx'"),
    ("bad mechanism value", [*RUN, "+system.mechanisms.engine_prewarm=2"], "mechanisms.engine_prewarm: got 2"),
    ("compare per-system knob out of bounds", ["compare", *TINY, "systems=[static]",
                                              "overrides.static.router.max_inflight=-3"], "router.max_inflight: got -3"),
    ("sim.retry_s=1e-12 (was a hang)", [*RUN, "sim.retry_s=1e-12"], "sim.retry_s: got 1e-12"),
    # --- interpolation and hydra's own settings
    ("broken interpolation", [*RUN, "seed=${nope}"], "config key seed: Interpolation key 'nope' not found"),
    ("unknown resolver", [*RUN, "seed=${oc.nope:1}"], "config key seed"),
    ("a deleted group", [*RUN, "~cluster"], "config key cluster: missing"),
    ("unknown launcher", ["run", "-m", *TINY, "system=static", "hydra/launcher=nope"], "hydra/launcher/nope"),
    ("--cfg with a bad value", ["run", "--cfg", "bogus"], "--cfg bogus: allowed: job, hydra, all"),
    # --- what a builder would allocate, bounded where it is read
    ("diurnal period 1e-9 (was 28 TiB)", [*RUN, "workload.diurnal_period_s=1e-9"],
     "workload.diurnal_period_s: got 1e-09"),
    ("an empty workload", [*RUN, "workload.duration_s=1e-9"], "the workload holds no request"),
    ("warmserve history past the week", ["run", "system=static", "cluster=tiny", "models=tiny1",
                                         "workload.history_days=7"], "workload.history_days: got 7"),
    ("a trace for the default workload", ["run", "system=static", "cluster=tiny", "models=tiny1",
                                          "workload.trace=mooncake_conv"], "workload=mapped_azure_conv"),
    # --- output formats
    ("trace plot to .docx", ["trace", "plot", "azure2023_conv", "--duration", "60", "--out", "x.docx"],
     "unknown figure format '.docx'"),
    ("report to .docx", ["report", ".", "--out", "x.docx"], "give a file name ending in .csv or .md"),
    # --- messages
    ("no command", [], "give a command"),
    ("unknown command", ["frobnicate"], "unknown command 'frobnicate'"),
    ("unknown option", ["compare", "--bogus"], "unknown option '--bogus'"),
    ("sweep with an unknown value", ["run", "-m", *TINY, "system=static,nope"], "unknown system 'nope'"),
]


@pytest.mark.parametrize("args,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(workdir, args, needle):
    p = warmsim(*args, cwd=workdir)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warmsim: error: "), p.stderr
    assert needle in lines[0], p.stderr
    assert not list(workdir.rglob("COMPLETE")) and not list(workdir.rglob("summary.csv"))


@pytest.mark.parametrize("command", ["compare", "run", "trace", "calibrate", "estimate", "bench", "figures",
                                     "report"])
def test_help_of_every_command(tmp_path, command):
    p = warmsim(command, "--help", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "usage" in p.stdout.lower() or "== Config ==" in p.stdout or "compare" in p.stdout
    assert p.stderr == ""


def test_trace_plot_into_an_existing_directory_and_report_into_a_new_folder(tmp_path):
    (tmp_path / "plots").mkdir()
    p = warmsim("trace", "plot", "azure2023_conv", "--duration", "600", "--out", "plots", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "plots" / "azure2023_conv.png").stat().st_size > 1000
    assert not (tmp_path / "plots.png").exists()
    out = tmp_path / "r"
    assert warmsim("run", *TINY, "system=static", f"hydra.run.dir={out}", cwd=tmp_path).returncode == 0
    p = warmsim("report", str(out), "--out", "new/folder/all.md", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "static" in (tmp_path / "new" / "folder" / "all.md").read_text()


def test_hydra_options_may_follow_the_overrides(tmp_path):
    p = warmsim("run", *TINY, "system=static", "--cfg", "job", cwd=tmp_path)
    assert p.returncode == 0 and "gpus_per_node: 2" in p.stdout, p.stderr
    assert not (tmp_path / "outputs").exists()  # printing the config runs nothing
