"""The estimate validation and the one-shot GPU script, run end to end on the fake backend.

On the fake backend the direct whole-model measurement and the sweep share one set of device
parameters, so the estimate (fitted from 1-2 layer stacks and 1-2 layer loads, then composed for
all 32 layers and 291 tensors) must agree with the direct measurement. The GPU run checks the same
composition against real timings (within 10 %).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from warmsim.calibrate.analytic import H100Params
from warmsim.calibrate.harness.fake import FakeDevice
from warmsim.calibrate.harness.plan import QUICK
from warmsim.calibrate.harness.runner import run_sweep
from warmsim.calibrate.harness.validate import errors, measure_rows

ROOT = Path(__file__).resolve().parents[2]
GB = 1e9


@pytest.mark.parametrize("params", [
    H100Params(),
    # a slower link, costly per-tensor work and allocation, a slower GPU: the estimate must follow them
    dataclasses.replace(H100Params(), h2d_pinned_bytes_per_s=22 * GB, load_per_tensor_s=300e-6,
                        malloc_call_s=200e-6, peak_flops=400e12, prefill_layer_overhead_s=150e-6),
], ids=["h100", "altered"])
def test_estimate_composes_the_sweep_into_the_whole_model(tmp_path, params):
    run_sweep(FakeDevice(params, jitter=0.02, seed=1), tmp_path / "p", QUICK, name="p")
    rows = measure_rows(FakeDevice(params, jitter=0.02, seed=2))
    errs = errors(rows, str(tmp_path / "p"))
    assert set(errs) == {"cold_load_pinned", "prefill_resident", "cold_load_plus_prefill"}
    for q, (measured, predicted, err) in errs.items():
        assert abs(err) < 0.05, (q, measured, predicted)


def test_the_estimate_is_not_blind_to_the_profile(tmp_path):
    """A profile of another device mispredicts this one: the agreement above is not automatic."""
    slow = dataclasses.replace(H100Params(), h2d_pinned_bytes_per_s=22 * GB)
    run_sweep(FakeDevice(slow), tmp_path / "slow", QUICK, name="slow")
    errs = errors(measure_rows(FakeDevice()), str(tmp_path / "slow"))
    assert errs["cold_load_pinned"][2] > 0.5


@pytest.mark.skipif(shutil.which("timeout") is None or shutil.which("tar") is None, reason="needs coreutils and tar")
def test_run_on_gpu_script_dry_run(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), DEVICE="fake", QUICK="1", PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "calibrate" / "run_on_gpu.sh")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["calibrate.log", "calibration.tgz", "compare.txt", "nvidia-smi.txt", "sanity.txt",
                     "validate.csv"]  # a device machine brings back at most eight files
    with tarfile.open(out / "calibration.tgz") as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile("fake_dryrun/meta.json"))
    assert "fake_dryrun/copy.csv" in names and "logs/run_on_gpu.log" in names
    assert meta["measured"] is False and meta["plan"] == "quick"
    compare = (out / "compare.txt").read_text()
    assert compare.count("worst error") == 2 and "== profile h100_analytic" in compare
    assert "0 outside their range" in (out / "sanity.txt").read_text()


def test_validate_command_line(tmp_path, capsys):
    from warmsim.calibrate.harness.validate import main

    assert main(["compare", str(tmp_path / "absent.csv"), "--profile", "h100_analytic"]) == 2
    assert "no measurements at" in capsys.readouterr().err
    assert main(["measure", "--device", "fake", "--out", str(tmp_path / "v.csv")]) == 0
    assert main(["compare", str(tmp_path / "v.csv"), "--profile", "h100_analytic"]) == 0
    assert "worst error" in capsys.readouterr().out
    (tmp_path / "short.csv").write_text("quantity,seconds,rep\ncold_load_pinned,0.3,0\n")
    assert main(["compare", str(tmp_path / "short.csv"), "--profile", "h100_analytic"]) == 2
    assert "no rows for prefill_resident" in capsys.readouterr().err
