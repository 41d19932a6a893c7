"""The simulator-facing modules never import torch; the shipped profile is reproducible."""

from __future__ import annotations

import subprocess
import sys

from warmsim.calibrate.analytic import build
from warmsim.sim.costprofile.profile import TABLES, table_path
from warmsim.sim.costprofile.shipped import resolve


def test_costmodel_does_not_import_torch():
    code = ("import sys, warmsim.sim.costmodel, warmsim.sim.costprofile.fit, warmsim.sim.costprofile.shipped, "
            "warmsim.calibrate.estimate, warmsim.calibrate.cli, warmsim.calibrate.harness.torch_device; "
            "from warmsim.sim.costmodel import ProfileCostModel; ProfileCostModel.load('h100_analytic'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_shipped_analytic_profile_is_regenerated_exactly(tmp_path):
    out = tmp_path / "h100_analytic"
    build(out)
    shipped = resolve("h100_analytic")
    for table in TABLES:
        assert table_path(out, table).read_text() == table_path(shipped, table).read_text(), table
    assert (out / "meta.json").read_text() == (shipped / "meta.json").read_text()
