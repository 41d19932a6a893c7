"""Harness bookkeeping with the fake device; the no-GPU path."""

from __future__ import annotations

import importlib.util
import json

import pytest

from warmsim.calibrate.cli import calibrate_main
from warmsim.calibrate.harness.fake import FakeDevice
from warmsim.calibrate.harness.plan import FULL, QUICK
from warmsim.calibrate.harness.runner import run_sweep
from warmsim.calibrate.harness.sections import SECTIONS
from warmsim.sim.costprofile.profile import SECTION_TABLES, TABLES, load_profile, read_table
from warmsim.sim.errors import UserError


def test_fake_sweep_writes_every_table_and_meta(tmp_path):
    meta = run_sweep(FakeDevice(), tmp_path, QUICK, name="fake", measured=False, label="fake")
    for table in TABLES:
        assert (tmp_path / f"{table}.csv").is_file(), table
        assert read_table(tmp_path, table), table
    on_disk = json.loads((tmp_path / "meta.json").read_text())
    assert on_disk == meta
    assert all(s["status"] == "ok" for s in meta["sections"].values())
    assert set(meta["sections"]) == set(SECTIONS)
    assert on_disk["gpu"]["name"].startswith("FakeDevice") and on_disk["harness_version"]
    prof = load_profile(tmp_path)
    assert prof.name == "fake" and not prof.measured


def test_one_failing_section_keeps_the_others(tmp_path):
    meta = run_sweep(FakeDevice(fail={"vmm_s": "cuMemCreate not supported"}), tmp_path, QUICK, name="partial")
    assert meta["sections"]["vmm"] == {"status": "failed", "reason": "RuntimeError: cuMemCreate not supported",
                                       "seconds": meta["sections"]["vmm"]["seconds"]}
    assert not (tmp_path / "vmm.csv").exists()
    ok = [s for s, v in meta["sections"].items() if v["status"] == "ok"]
    assert set(ok) == set(SECTIONS) - {"vmm"}
    saved = json.loads((tmp_path / "meta.json").read_text())
    assert saved["sections"]["vmm"]["status"] == "failed"
    # the profile still loads; the missing curve is a clear error naming the profile
    from warmsim.sim.costmodel import ProfileCostModel

    cost = ProfileCostModel.load(tmp_path)
    assert cost.link_bandwidth("pcie_h2d_pinned") > 0
    with pytest.raises(UserError, match="partial.*VMM"):
        cost.vmm_map_s(2 << 20)


def test_tables_written_as_sections_finish(tmp_path):
    """An interruption after a section loses nothing measured: earlier tables are already on disk."""

    class Interrupt(BaseException):
        pass

    dev = FakeDevice()
    orig = dev.prefill_s

    def boom(*a, **k):
        raise Interrupt()

    dev.prefill_s = boom  # type: ignore[method-assign]
    with pytest.raises(Interrupt):
        run_sweep(dev, tmp_path, QUICK, name="cut")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert set(meta["sections"]) == {"copy", "alloc", "vmm", "process"}
    assert read_table(tmp_path, "copy")
    del orig


def test_a_keyboard_interrupt_is_recorded_before_it_propagates(tmp_path):
    """Ctrl-C (or the time limit of run_on_gpu.sh, sent as SIGINT) marks the section it cut short."""
    dev = FakeDevice()

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    dev.decode_s = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(dev, tmp_path, QUICK, name="cut")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["sections"]["decode"]["status"] == "failed"
    assert meta["sections"]["decode"]["reason"] == "interrupted"
    assert meta["sections"]["prefill"]["status"] == "ok" and read_table(tmp_path, "prefill")
    assert "weight_load" not in meta["sections"]


def test_plans_cover_every_section_and_fit_budget():
    for plan in (FULL, QUICK):
        assert set(dict(plan.budgets_s)) == set(SECTIONS) == set(SECTION_TABLES)
    assert sum(dict(FULL.budgets_s).values()) <= 330
    assert sum(dict(QUICK.budgets_s).values()) <= 70


def test_calibrate_without_gpu_is_a_user_error(tmp_path):
    has_cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        has_cuda = torch.cuda.is_available()
    if has_cuda:
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(UserError, match="calibrate: .*(torch is not installed|no CUDA GPU)"):
        calibrate_main(["--quick", "--out", str(tmp_path / "p")])


def test_calibrate_bad_arguments():
    with pytest.raises(UserError, match="--sections"):
        calibrate_main(["--sections", "copy,teleport"])
    with pytest.raises(UserError):
        calibrate_main(["--frobnicate"])


def test_fake_backend_dry_run_writes_a_profile_labelled_not_measured(tmp_path, capsys):
    assert calibrate_main(["--device", "fake", "--quick", "--out", str(tmp_path / "dry")]) == 0
    meta = json.loads((tmp_path / "dry" / "meta.json").read_text())
    assert meta["measured"] is False and meta["label"].startswith("FAKE DEVICE")
    out = capsys.readouterr().out
    assert "10 sections ok, 0 failed" in out and "FAKE DEVICE" in out
    assert "sanity check of profile dry (NOT measured)" in out
