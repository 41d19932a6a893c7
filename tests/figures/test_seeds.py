"""Sweeps in figures average over seeds with a 95% CI (issue 14); single-run figures take one seed."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from warmsim.figures import tables


def _run(root, name, seed, rps, p99):
    d = root / name
    d.mkdir()
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "workload": {"kind": "warmserve", "trace": "conv",
                                                                              "rps": rps, "duration_s": 60}}))
    pd.DataFrame({"system": ["static", "static"], "model": ["m", "ALL"], "ttft_p99_s": [p99, p99],
                  "slo_attainment": [1.0, 1.0], "profile": "x"}).to_csv(d / "summary.csv", index=False)
    return tables.read_run(d)


def test_sweep_summary_averages_seeds_and_main_group_keeps_them(tmp_path):
    runs = [_run(tmp_path, "a", 0, 5, 1.0), _run(tmp_path, "b", 1, 5, 3.0), _run(tmp_path, "c", 0, 10, 2.0)]
    assert len(tables.main_group(runs)) == 3  # seeds are one setup
    s = tables.sweep_summary(runs, ["static"])
    row = s[(s.model == "ALL") & (s.rps == 5)].iloc[0]
    assert row.seeds == 2 and row.ttft_p99_s == pytest.approx(2.0)
    assert row.ttft_p99_s_ci == pytest.approx(12.7062 * (2 ** 0.5) / 2 ** 0.5, rel=1e-4)  # t(.975,1) * sd / sqrt(2)
    one = s[(s.model == "ALL") & (s.rps == 10)].iloc[0]
    assert one.seeds == 1 and one.ttft_p99_s_ci != one.ttft_p99_s_ci
