"""The sanity check of a profile against the public anchors of docs/calibration.md."""

from __future__ import annotations

import dataclasses
import json

import pytest

from warmsim.calibrate.analytic import H100Params
from warmsim.calibrate.cli import calibrate_main
from warmsim.calibrate.harness.fake import FakeDevice
from warmsim.calibrate.harness.plan import QUICK
from warmsim.calibrate.harness.runner import run_sweep
from warmsim.calibrate.sanity import check_profile, format_checks, outside
from warmsim.sim.costmodel import ProfileCostModel

GB = 1e9


def fake_profile(tmp_path, name="p", **params):
    """A quick fake sweep with some H100Params changed; returns its fitted profile and directory."""
    out = tmp_path / name
    run_sweep(FakeDevice(dataclasses.replace(H100Params(), **params)), out, QUICK, name=name, measured=False,
              label="test")
    return ProfileCostModel.load(out).fitted, out


def verdicts(checks):
    return {c.quantity: c.verdict for c in checks}


def test_analytic_profile_sits_inside_every_range(analytic_cost):
    """The analytic profile is built from these anchors, so this checks the table, not a GPU."""
    checks = check_profile(analytic_cost.fitted)
    assert set(verdicts(checks).values()) == {"ok"}
    text = format_checks("h100_analytic", False, checks)
    assert "NOT measured" in text and f"{len(checks)} ok, 0 outside" in text


def test_a_slow_link_is_flagged_with_its_generation(tmp_path):
    fp, _ = fake_profile(tmp_path, h2d_pinned_bytes_per_s=24 * GB)  # a Gen4-class number on a Gen5 link
    v = verdicts(check_profile(fp))
    assert v["pinned copy bandwidth (h2d)"] == "OUTSIDE"
    assert v["pinned copy bandwidth (d2h)"] == "ok"
    row = next(c for c in check_profile(fp) if c.quantity == "pinned copy bandwidth (h2d)")
    assert row.value == pytest.approx(24, rel=0.01) and "Gen5" in row.note


def test_the_link_generation_comes_from_the_maximum_not_the_idle_link(tmp_path):
    fp, _ = fake_profile(tmp_path, h2d_pinned_bytes_per_s=22 * GB, d2h_pinned_bytes_per_s=22 * GB)
    gen4 = dataclasses.replace(fp, meta=dict(fp.meta, gpu=dict(fp.meta["gpu"], pcie_gen=1, pcie_gen_max=4)))
    assert verdicts(check_profile(gen4))["pinned copy bandwidth (h2d)"] == "ok"
    unknown = dataclasses.replace(fp, meta=dict(fp.meta, gpu={}))
    assert verdicts(check_profile(unknown))["pinned copy bandwidth (h2d)"] == "not checked"


def test_pageable_faster_than_pinned_and_costly_remaps_are_flagged(tmp_path):
    fp, _ = fake_profile(tmp_path, h2d_pageable_bytes_per_s=60 * GB, vmm_map_s=150e-6, vmm_set_access_s=100e-6)
    v = verdicts(check_profile(fp))
    assert v["pinned / pageable h2d bandwidth"] == "OUTSIDE"
    assert v["VMM remap of kept handles / create"] == "OUTSIDE"
    assert v["VMM map per 2 MiB"] == "OUTSIDE"  # 150 us against ~1.5 us


def test_a_cache_that_was_not_dropped_is_not_a_disk_number(tmp_path):
    dev = FakeDevice()
    measured = dev.disk_s
    dev.disk_s = lambda tensors, reps: {(c, "none"): v for (c, _), v in measured(tensors, reps).items()}
    run_sweep(dev, tmp_path / "kept", QUICK, name="kept")
    with pytest.warns(UserWarning, match="page cache could not be dropped"):
        fp = ProfileCostModel.load(tmp_path / "kept").fitted
    row = next(c for c in check_profile(fp) if c.quantity.startswith("cold disk"))
    assert row.verdict == "not checked" and "not a disk number" in row.note


def test_missing_sections_are_not_checked(tmp_path):
    out = tmp_path / "partial"
    run_sweep(FakeDevice(fail={"vmm_s": "no VMM", "process_s": "no fork"}), out, QUICK, name="partial")
    checks = check_profile(ProfileCostModel.load(out).fitted)
    v = verdicts(checks)
    assert v["VMM create per 2 MiB"] == "not checked" and v["CUDA context creation"] == "not checked"
    assert not outside(checks)


def test_check_command_exit_status(tmp_path, capsys):
    assert calibrate_main(["--check", "h100_analytic"]) == 0
    _, bad = fake_profile(tmp_path, "slow", h2d_pinned_bytes_per_s=10 * GB)
    assert calibrate_main(["--check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "OUTSIDE" in out and json.loads((bad / "meta.json").read_text())["measured"] is False


def test_spread_reports_how_much_repetitions_disagree(tmp_path):
    from warmsim.calibrate.sanity import format_spreads, spreads
    from warmsim.sim.costprofile.profile import load_profile

    run_sweep(FakeDevice(jitter=0.10, seed=3), tmp_path / "noisy", QUICK, name="noisy")
    run_sweep(FakeDevice(), tmp_path / "exact", QUICK, name="exact")
    noisy = {s.table: s for s in spreads(load_profile(tmp_path / "noisy"))}
    assert {"copy", "prefill", "decode", "vmm"} <= set(noisy)
    assert all(0 < s.median <= s.worst <= 0.2 * 1.0001 / 0.9 for s in noisy.values())  # |u| <= 1: (1.1-0.9)/0.9
    exact = spreads(load_profile(tmp_path / "exact"))
    assert exact and all(s.worst == 0 for s in exact)
    assert "worst point" in format_spreads(list(noisy.values()))


def test_a_disk_test_on_tmpfs_is_not_a_disk_number(tmp_path):
    fp, _ = fake_profile(tmp_path)
    on_tmpfs = dataclasses.replace(fp, meta=dict(fp.meta, host=dict(fp.meta["host"], scratch_fs="tmpfs")))
    row = next(c for c in check_profile(on_tmpfs) if c.quantity.startswith("cold disk"))
    assert row.verdict == "not checked" and "tmpfs" in row.note


def test_fitting_a_profile_whose_disk_test_ran_on_tmpfs_warns(tmp_path):
    _, out = fake_profile(tmp_path)
    meta = json.loads((out / "meta.json").read_text())
    meta["host"]["scratch_fs"] = "tmpfs"
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="scratch directory was on tmpfs"):
        ProfileCostModel.load(out)
