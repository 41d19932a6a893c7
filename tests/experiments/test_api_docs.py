"""docs/api.md's examples run as written (issue 14), and the API's default compare is the CLI's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.exe import warmsim_exe

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_api_examples_run_and_the_default_compare_matches_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WARMSIM_CONFIG_DIR", raising=False)
    ns: dict = {}
    code = blocks()
    assert len(code) >= 4
    for i, block in enumerate(code):
        exec(compile(block, f"docs/api.md block {i + 1}", "exec"), ns)  # noqa: S102 - the documented examples
    api = ns["res"].summary
    p = subprocess.run([warmsim_exe(), "compare", f"hydra.run.dir={tmp_path / 'cli'}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    cli = pd.read_csv(tmp_path / "cli" / "summary.csv")
    pd.testing.assert_frame_equal(pd.read_csv(ns["res"].dir / "summary.csv"), cli)
    assert api[["system", "model", "requests", "ttft_p99_s"]].equals(cli[["system", "model", "requests", "ttft_p99_s"]])
    assert Path(ns["res"].dir).is_relative_to(tmp_path / "outputs" / "api")


def test_a_bad_override_is_a_user_error_and_load_refuses_a_non_run(tmp_path):
    from warmsim.experiments.api import config, load
    from warmsim.sim.errors import UserError
    with pytest.raises(UserError, match="unknown cluster 'nope'"):
        config("cluster=nope")
    with pytest.raises(UserError, match="not a warmsim run directory"):
        load(tmp_path)
