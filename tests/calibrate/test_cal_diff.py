"""``warmsim calibrate --diff A B``: two profiles' headline numbers side by side."""

from __future__ import annotations

import dataclasses

import pytest

from warmsim.calibrate.analytic import H100Params
from warmsim.calibrate.cli import calibrate_main
from warmsim.calibrate.diff import format_diff, headline
from warmsim.calibrate.harness.fake import FakeDevice
from warmsim.calibrate.harness.plan import QUICK
from warmsim.calibrate.harness.runner import run_sweep
from warmsim.sim.costmodel import ProfileCostModel

GB = 1e9


def test_a_slower_link_shows_in_the_ratio_and_in_the_cold_start(tmp_path, analytic_cost):
    slow = dataclasses.replace(H100Params(), h2d_pinned_bytes_per_s=25 * GB)
    run_sweep(FakeDevice(slow), tmp_path / "slow", QUICK, name="slow", measured=False, label="test")
    b = ProfileCostModel.load(tmp_path / "slow")
    ha, hb = headline(analytic_cost), headline(b)
    assert hb["copy_h2d_pinned_GBps"] / ha["copy_h2d_pinned_GBps"] == pytest.approx(0.5, rel=1e-3)
    # a 13.5 GB load at half the bandwidth: about 0.27 s more before the first token
    extra = hb["llama-2-7b_cold_start_pinned_ttft_s"] - ha["llama-2-7b_cold_start_pinned_ttft_s"]
    assert 0.2 < extra < 0.35
    text = format_diff(analytic_cost, b)
    assert "A = h100_analytic (NOT measured), B = slow (NOT measured)" in text
    assert "0.50x" in text


def test_rows_one_profile_lacks_show_a_dash(tmp_path, analytic_cost, capsys):
    run_sweep(FakeDevice(fail={"prefill_s": "x", "decode_s": "y"}), tmp_path / "nocompute", QUICK, name="nocompute")
    b = ProfileCostModel.load(tmp_path / "nocompute")
    assert "llama-2-7b_prefill_1024_s" not in headline(b)
    row = next(line for line in format_diff(analytic_cost, b).splitlines() if "prefill_1024" in line)
    assert row.split()[-2:] == ["-", "-"]
    assert calibrate_main(["--diff", "h100_analytic", str(tmp_path / "nocompute")]) == 0
    assert "B = nocompute" in capsys.readouterr().out
