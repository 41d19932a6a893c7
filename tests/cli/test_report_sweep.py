"""``warmsim report`` over a sweep (issue 14): sweep parameters as columns, rows sorted, mean and 95%
CI over seeds per metric and system; ``--html`` one self-contained page."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.exe import warmsim_exe
from warmsim.experiments.report_table import aggregate

TINY = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=120",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]


def warmsim(*args, cwd):
    return subprocess.run([warmsim_exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_aggregate_takes_the_mean_and_a_student_t_interval_over_seeds():
    t = pd.DataFrame({"run": list("abcd"), "overrides": "", "rate": ["1", "1", "1", "2"], "seed": ["0", "1", "2", "0"],
                      "system": "static", "model": "ALL", "ttft_p99_s": [1.0, 2.0, 3.0, 5.0]})
    agg = aggregate(t, ["rate"])
    one = agg[agg["rate"] == "1"].iloc[0]
    assert one["n"] == 3 and one["ttft_p99_s"] == pytest.approx(2.0)
    assert one["ttft_p99_s_ci"] == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    two = agg[agg["rate"] == "2"].iloc[0]
    assert two["n"] == 1 and np.isnan(two["ttft_p99_s_ci"])


def test_a_three_seed_two_rate_sweep_gives_one_row_per_system_and_rate(tmp_path):
    sw = tmp_path / "sw"
    p = warmsim("compare", "-m", *TINY, "systems=[static,ondemand]", "workload.total_rate=2,1", "seed=0,1,2",
                f"hydra.sweep.dir={sw}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    progress = [ln for ln in p.stderr.splitlines() if ln.startswith("warmsim: sweep: ")]
    assert progress[0].startswith("warmsim: sweep: 1/6 jobs done") and "ETA" in progress[0]
    assert progress[-1].startswith("warmsim: sweep: 6/6 jobs done")
    p = warmsim("report", str(sw), "--out", str(tmp_path / "all.md"), "--html", str(tmp_path / "r.html"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = lines[0].split()
    assert head[:3] == ["workload.total_rate", "system", "n"] and "ttft_p99" in head
    rows = [ln.split() for ln in lines[1:5]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "static", "3"), ("1", "ondemand", "3"),
                                                  ("2", "static", "3"), ("2", "ondemand", "3")]
    assert all("±" in r[head.index("ttft_p99")] for r in rows)
    page = (tmp_path / "r.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "<script" not in page and "<link" not in page
    assert page.count("data:image/png;base64,") >= 4  # metrics vs rate, per-model tails
    for needle in ("Summary (all models)", "Per-model tails", "Paper claims", "Cost profile", "measured by an external script",
                   "Commands to reproduce", "warmsim compare -m", "±"):
        assert needle in page, needle
    assert "workload.total_rate" in (tmp_path / "all.md").read_text()


def test_the_sweep_total_counts_overrides_and_the_experiment_s_sweeper_params():
    from warmsim.experiments.cli import _sweep_total
    params = {"workload.trace": "conv,code", "workload.rps": "5,10,15,20", "workload.alpha": "0.5,2.0"}
    assert _sweep_total(["experiment=paper_main"], params) == 16
    assert _sweep_total(["experiment=paper_main", "workload.rps=5,10", "seed=0,1,2"], params) == 24
    assert _sweep_total(["system=static,ondemand"], {}) == 2


def test_html_of_a_single_run_without_sweep_parameters_draws_its_bars(tmp_path):
    run = tmp_path / "one"
    p = warmsim("compare", *TINY, "systems=[static,ondemand]", f"hydra.run.dir={run}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = warmsim("report", str(run), "--html", str(tmp_path / "one.html"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "one.html").read_text().count("data:image/png;base64,") >= 1


def test_a_run_m_sweep_is_grouped_by_its_overrides_not_its_directories(tmp_path):
    # `warmsim run -m` of 2 systems x 2 rates x 3 seeds: 12 run directories, each with the system in its
    # overrides. The report has 4 rows of n = 3 (the seeds), rates in numeric order (2 before 10), and
    # no run path among the sweep parameters.
    sw = tmp_path / "sw"
    p = warmsim("run", "-m", *TINY, "system=static,ondemand", "workload.total_rate=10,2", "seed=0,1,2",
                f"hydra.sweep.dir={sw}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = warmsim("report", str(sw), "--out", str(tmp_path / "all.csv"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = lines[0].split()
    assert head[:3] == ["workload.total_rate", "system", "n"] and "run" not in head
    rows = [ln.split()[:3] for ln in lines[1:] if ln.strip() and not ln.startswith("wrote")]
    assert rows == [["2", "static", "3"], ["2", "ondemand", "3"], ["10", "static", "3"], ["10", "ondemand", "3"]]
    assert "counted as repeats" not in p.stderr


def test_runs_that_share_overrides_and_seed_are_counted_together_with_a_note():
    from warmsim.experiments.report_table import repeats
    t = pd.DataFrame({"run": ["a", "b", "a", "b"], "rate": ["1"] * 4, "seed": ["0"] * 4, "system": "s",
                      "model": ["ALL", "ALL", "m", "m"], "ttft_p99_s": [1.0, 3.0, 1.0, 3.0]})
    agg = aggregate(t[t.model == "ALL"], ["rate"])
    assert list(agg.n) == [2] and agg.ttft_p99_s.iloc[0] == 2.0
    assert repeats(t, ["rate"]) == ["2 runs share rate=1, seed=0, system=s (a, b): counted as repeats in n"]


def test_counts_print_as_whole_numbers_and_a_single_seed_has_no_interval():
    from warmsim.experiments.report_table import shown_aggregate
    t = pd.DataFrame({"run": ["a", "b"], "rate": ["1", "2"], "seed": ["0", "0"], "system": "s", "model": "ALL",
                      "requests": [17340, 17341], "cold_starts": [9, 8], "ttft_p99_s": [0.5, 0.25]})
    shown = shown_aggregate(aggregate(t, ["rate"]), ["rate"], False)
    assert list(shown.reqs) == ["17340", "17341"] and list(shown.cold) == ["9", "8"]
    assert list(shown.ttft_p99) == ["0.500", "0.250"]
