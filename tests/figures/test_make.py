"""``warmsim figures``: option checks, drawing from existing run directories, and one quick end-to-end run."""

import json
import subprocess
import time

import pytest
import yaml

from tests.exe import warmsim_exe
from tests.figures import synthetic
from warmsim.figures import make
from warmsim.sim.errors import UserError


def _run_dir(path, rps, systems, **workload):
    """A hand-made run directory with every table and the config keys the figures read."""
    path.mkdir(parents=True)
    synthetic.summary(systems, scale=rps / 10).to_csv(path / "summary.csv", index=False)
    synthetic.requests(systems).to_parquet(path / "requests.parquet")
    synthetic.timeline().to_parquet(path / "timeline.parquet")
    synthetic.predictions().to_csv(path / "predictions.csv", index=False)
    cfg = {"workload": {"kind": "warmserve", "trace": "conv", "rps": float(rps), "duration_s": 60.0, **workload},
           "seed": 0, "cluster": {"nodes": 1, "gpus_per_node": 2}, "slo": {"ttft_s": 1.0},
           "metrics": {"fast_ttft_s": 0.1, "unfinished_ttft_s": 999.0}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_results_without_tables_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no tables here")
    with pytest.raises(UserError, match="no run directory"):
        make.main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    with pytest.raises(UserError, match="not a directory"):
        make.main(["--results", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("argv,needle", [
    (["--only", "nope"], "unknown figure"),
    (["--criterion", "fast"], "invalid choice"),
    (["--rates", "5,x"], "comma-separated"),
    (["--jobs", "0"], "--jobs"),
])
def test_bad_options_are_user_errors(tmp_path, argv, needle):
    with pytest.raises(UserError, match=needle):
        make.main(argv + ["--results", str(tmp_path), "--out", str(tmp_path / "o")])


def test_draws_every_figure_from_existing_runs(tmp_path):
    _run_dir(tmp_path / "runs" / "headline", 10, synthetic.SYSTEMS)
    _run_dir(tmp_path / "runs" / "load" / "rps20", 20, synthetic.SYSTEMS)
    _run_dir(tmp_path / "runs" / "ablation", 10, ["warmserve_disable_prewarm", "warmserve_oracle"])
    out = tmp_path / "out"
    assert make.main(["--results", str(tmp_path / "runs"), "--out", str(out), "--rps", "10",
                      "--ablation-rps", "10"]) == 0
    for name in make.FIGURES:
        assert (out / f"{name}.png").stat().st_size > 5000, name
    nums = json.loads((out / "numbers.json").read_text())
    assert set(nums["ablation"]["share_ttft_under_fast"]) == {"warmserve", "warmserve_disable_prewarm", "warmserve_oracle"}
    assert nums["max_rps"]["rates"] == [10.0, 20.0]


def test_bursty_runs_feed_the_ablation_figure_only(tmp_path):
    _run_dir(tmp_path / "runs" / "headline", 10, synthetic.SYSTEMS)
    _run_dir(tmp_path / "runs" / "load" / "rps20", 20, synthetic.SYSTEMS)
    _run_dir(tmp_path / "runs" / "ablation", 10, ["warmserve_disable_prewarm"])
    # bursty runs at the same rate as the headline: they must not be averaged into the load sweep
    _run_dir(tmp_path / "runs" / "ablation_bursty", 10, ["warmserve", "warmserve_disable_prewarm"], burstiness_cv=4.0)
    out = tmp_path / "out"
    assert make.main(["--results", str(tmp_path / "runs"), "--out", str(out), "--rps", "10", "--ablation-rps", "10",
                      "--bursty-cv", "4", "--bursty-rps", "10", "--only", "ablation,max_rps"]) == 0
    nums = json.loads((out / "numbers.json").read_text())
    assert list(nums["ablation"]["regimes"]) == ["trace arrivals, 10 req/s", "bursty CV 4, 10 req/s"]
    assert set(nums["ablation"]["regimes"]["bursty CV 4, 10 req/s"]) == {"warmserve", "warmserve_disable_prewarm"}
    assert nums["max_rps"]["rates"] == [10.0, 20.0]
    # another CV than the runs': that regime is left out
    assert make.main(["--results", str(tmp_path / "runs"), "--out", str(out), "--rps", "10", "--ablation-rps", "10",
                      "--bursty-cv", "2", "--bursty-rps", "10", "--only", "ablation"]) == 0
    assert list(json.loads((out / "numbers.json").read_text())["ablation"]["regimes"]) == ["trace arrivals, 10 req/s"]


def test_plan_adds_the_bursty_ablation_regime(tmp_path):
    from warmsim.figures.jobs import plan
    jobs = plan(tmp_path, workload="warmserve_conv", headline_rps=10, rates=[10], main_systems=["warmserve"],
                ablation_systems=["warmserve_oracle"], ablation_rps=30, duration_s=None, seed=0,
                need={"ablation", "ablation_bursty"}, bursty=(4.0, 15.0))
    bursty = {j.name: j for j in jobs if "bursty" in j.name}
    assert set(bursty) == {"ablation bursty warmserve", "ablation bursty warmserve_oracle"}
    assert {"workload.rps=15", "workload.burstiness_cv=4", "system=warmserve"} <= set(bursty["ablation bursty warmserve"].overrides)


def test_plan_adds_the_capacity_grid_for_its_systems_only(tmp_path):
    from warmsim.figures.jobs import plan
    jobs = plan(tmp_path, workload="warmserve_conv", headline_rps=15, rates=[10, 15, 20], main_systems=["sllm", "warmserve"],
                ablation_systems=[], ablation_rps=30, duration_s=None, seed=0, need={"load"},
                capacity=([12.5, 15, 17.5, 20], ["warmserve", "muxserve"]))
    names = {j.name for j in jobs}
    assert {"load rps=12.5 warmserve", "load rps=12.5 muxserve", "load rps=17.5 muxserve"} <= names
    assert "load rps=12.5 sllm" not in names and "load rps=15 muxserve" not in names  # 15: the headline run
    assert sum(j.name == "load rps=20 warmserve" for j in jobs) == 1  # already in the load sweep


def test_the_figure_defaults_follow_the_experiment_overlays():
    args = make.parser().parse_args([])
    assert args.ablation_rps == make.experiment_workload("paper_ablation")["rps"]
    assert args.bursty_cv == make.experiment_workload("paper_ablation_bursty")["burstiness_cv"]
    assert max(b - a for a, b in zip(args.capacity_rates, args.capacity_rates[1:])) <= 2.5
    assert set(args.capacity_systems) == {"warmserve", "muxserve"}


def test_rate_not_in_results_is_a_user_error(tmp_path):
    _run_dir(tmp_path / "a", 10, ["warmserve"])
    _run_dir(tmp_path / "b", 20, ["warmserve"])
    with pytest.raises(UserError, match="no run at workload.rps=40"):
        make.main(["--results", str(tmp_path), "--out", str(tmp_path / "o"), "--rps", "40", "--only", "tail_ttft"])


def test_quick_end_to_end_tail_ttft(tmp_path):
    exe = warmsim_exe()
    t0 = time.perf_counter()
    p = subprocess.run([exe, "figures", "--quick", "--only", "tail_ttft", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "tail_ttft.png").stat().st_size > 5000
    assert (tmp_path / "runs" / "headline" / "summary.csv").is_file()
    assert time.perf_counter() - t0 < 90


def test_plan_runs_warmserve_for_an_ablation_alone(tmp_path):
    from warmsim.figures.jobs import plan
    kw = dict(workload="warmserve_conv", headline_rps=10, rates=[10, 20], main_systems=["sllm", "warmserve"],
              ablation_systems=["warmserve_oracle"], ablation_rps=10, duration_s=60, seed=0)
    alone = {j.name for j in plan(tmp_path, need={"ablation"}, **kw)}
    assert alone == {"ablation warmserve", "ablation warmserve_oracle"}
    full = [j for j in plan(tmp_path, need={"headline", "load", "ablation"}, **kw)]
    names = {j.name for j in full}
    assert names == {"headline", "load rps=20 sllm", "load rps=20 warmserve", "ablation warmserve_oracle"}
    assert all("workload.duration_s=60" in j.overrides for j in full)
