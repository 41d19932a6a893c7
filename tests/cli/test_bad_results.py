"""Result folders and streams that are not what a command expects (issue 22 §6, §7): a closed stdout,
a summary without a column, a corrupted table, an unknown figure format, bad input found before a run
starts. Each is one line (exit 2) or a quiet stop, never a traceback."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from tests.exe import warmsim_exe

TINY = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=60", "workload.total_rate=1",
        "workload.tokens_from=null", "workload.prompt_tokens=200", "workload.output_tokens=20"]


def warmsim(*args, cwd, stdout=subprocess.PIPE):
    return subprocess.run([warmsim_exe(), *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=300)


def one_error_line(p, needle):
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warmsim: error: ") and needle in lines[0], p.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "ok"
    p = warmsim("compare", *TINY, "systems=[static,ondemand]", f"hydra.run.dir={d}", cwd=d.parent)
    assert p.returncode == 0, p.stderr
    return d


@pytest.mark.parametrize("args", [["--help"], ["trace", "list"], ["report", "RUN"]])
def test_a_closed_stdout_ends_quietly(run_dir, args):
    # The reader is gone before warmsim writes (as `warmsim --help | head -1` once the pipe is full):
    # no BrokenPipeError traceback, exit status 128 + SIGPIPE.
    r, w = os.pipe()
    os.close(r)
    try:
        p = warmsim(*[str(run_dir) if a == "RUN" else a for a in args], cwd=run_dir.parent, stdout=w)
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == "", p.stderr


def _copy_with(run_dir, tmp_path, name, edit):
    import shutil
    d = tmp_path / name
    shutil.copytree(run_dir, d)
    edit(d)
    return d


def test_a_summary_without_a_column_is_one_line_for_report_and_figures(run_dir, tmp_path):
    def drop(d):
        s = pd.read_csv(d / "summary.csv").drop(columns=["ttft_p99_s"])
        s.to_csv(d / "summary.csv", index=False)
    d = _copy_with(run_dir, tmp_path, "nocol", drop)
    one_error_line(warmsim("report", str(d), "--html", str(tmp_path / "r.html"), cwd=tmp_path),
                   f"{d / 'summary.csv'}: lacks column(s) ttft_p99_s")
    one_error_line(warmsim("figures", "--results", str(d), "--out", str(tmp_path / "fig"), cwd=tmp_path),
                   f"{d / 'summary.csv'}: lacks column(s) ttft_p99_s")


def test_a_metric_holding_text_names_the_file_and_the_column(run_dir, tmp_path):
    def text(d):
        s = pd.read_csv(d / "summary.csv")
        s["ttft_p99_s"] = "abc"
        s.to_csv(d / "summary.csv", index=False)
    d = _copy_with(run_dir, tmp_path, "text", text)
    one_error_line(warmsim("report", str(d), cwd=tmp_path), "column ttft_p99_s holds 'abc', not a number")


@pytest.mark.parametrize("file,needle", [("timeline.parquet", "not a readable table"),
                                         ("requests.parquet", "not a readable table"),
                                         ("config.yaml", "not a readable config")])
def test_a_corrupted_run_file_is_named_by_timeline(run_dir, tmp_path, file, needle):
    d = _copy_with(run_dir, tmp_path, "bad", lambda d: (d / file).write_bytes(b"PAR1garbage: [unclosed\n"))
    one_error_line(warmsim("timeline", str(d), "--out", str(tmp_path / "t.json"), cwd=tmp_path),
                   f"{d / file}: {needle}")


def test_an_unknown_figure_format_is_named_before_anything_is_written(run_dir, tmp_path):
    p = warmsim("timeline", str(run_dir), "--out", str(tmp_path / "t.json"), "--figure", str(tmp_path / "m.docx"),
                cwd=tmp_path)
    one_error_line(p, "unknown figure format '.docx'")
    assert not (tmp_path / "t.json").exists()


def test_bad_input_found_before_the_run_leaves_no_incomplete_marker(tmp_path):
    # The workload cannot be built (an empty one): the directory hydra made has no INCOMPLETE marker,
    # and no result file; `warmsim report` sees no run there.
    out = tmp_path / "r"
    one_error_line(warmsim("run", *TINY, "system=static", "workload.duration_s=1e-9", f"hydra.run.dir={out}",
                           cwd=tmp_path), "the workload holds no request")
    assert not (out / "INCOMPLETE").exists() and not (out / "summary.csv").exists()
