"""Golden end-to-end runs: each case (tests/golden/cases.py) under its systems must reproduce its stored
summary exactly (same config + seed = same result). The files are regenerated only on purpose, by
``python -m tests.golden.regen`` (which refuses in CI), and the commit explains the change."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.golden.cases import CASES, HERE, run_case


@pytest.fixture(scope="module", params=sorted(CASES))
def case_and_summary(request):
    case = CASES[request.param]
    return case, run_case(case)


def test_each_case_matches_its_golden_summary(case_and_summary):
    case, got = case_and_summary
    golden = pd.read_csv(case.csv)
    pd.testing.assert_frame_equal(got, golden, check_exact=False, rtol=1e-9)


def test_each_golden_file_records_the_commit_and_overrides_that_produced_it(case_and_summary):
    case, _ = case_and_summary
    meta = json.loads(case.meta.read_text())
    assert len(meta["commit"].split("+")[0]) == 40 and meta["overrides"] == list(case.overrides)


def test_every_system_completes_the_workload(case_and_summary):
    _, summary = case_and_summary
    allrows = summary[summary.model == "ALL"].set_index("system")
    assert (allrows.completed + allrows.dropped == allrows.requests).all()


def test_the_paper_case_exercises_evictions_preemptions_and_drops():
    golden = pd.read_csv(CASES["paper"].csv)
    allrows = golden[golden.model == "ALL"].set_index("system")
    assert allrows.loc["warmserve", "evictions"] > 0
    assert allrows.preemptions.sum() > 0 and allrows.dropped.sum() > 0
    assert set(allrows.index) == {"static", "sllm", "muxserve", "warmserve"}


def test_regeneration_refuses_in_ci():
    p = subprocess.run([sys.executable, "-m", "tests.golden.regen"], cwd=HERE.parent.parent,
                       env={**os.environ, "CI": "true"}, capture_output=True, text=True)
    assert p.returncode == 2 and "refusing" in p.stderr
