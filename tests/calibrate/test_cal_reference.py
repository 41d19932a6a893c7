"""The shipped ``h100_reference`` profile: the real H100's numbers where they were measured, the eager
analytic profile elsewhere, and every report says which."""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from warmsim.calibrate import analytic, reference
from warmsim.calibrate.cli import calibrate_main
from warmsim.calibrate.diff import format_diff
from warmsim.calibrate.estimate import EstimateRequest, estimate, format_estimate
from warmsim.calibrate.refcheck import figures, table
from warmsim.sim.catalog import get_shape
from warmsim.sim.cost import ConstantCostModel
from warmsim.sim.costmodel import ProfileCostModel
from warmsim.sim.costprofile.assumptions import Assumptions
from warmsim.sim.costprofile.profile import TABLES, external_note, load_profile, table_path
from warmsim.sim.costprofile.shipped import external_note_of, resolve
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "calibrate" / "reference_data"


def served(name: str, tp: int = 1) -> ServedModel:
    return ServedModel(name, get_shape(name), tp)


@pytest.fixture(scope="module")
def ref() -> ProfileCostModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ProfileCostModel.load("h100_reference")


@pytest.fixture(scope="module")
def eager() -> ProfileCostModel:
    return ProfileCostModel.load("h100_eager_analytic")


def test_shipped_reference_profile_is_regenerated_exactly(tmp_path):
    out = tmp_path / "h100_reference"
    reference.build(out)
    shipped = resolve("h100_reference")
    for t in TABLES:
        assert table_path(out, t).read_text() == table_path(shipped, t).read_text(), t
    assert (out / "meta.json").read_text() == (shipped / "meta.json").read_text()


def test_the_shipped_json_files_are_the_ones_meta_names():
    meta = load_profile(resolve("h100_reference")).meta
    m = reference.load_measurements()
    assert {k: v["sha256"] for k, v in meta["measurement_files"].items()} == m.sha256
    assert set(m.sha256) == {p.name for p in DATA.glob("*.json")}


def test_loads_as_a_cost_model_measured_by_an_external_script(ref):
    assert ref.name == "h100_reference" and ref.measured is True
    meta = ref.fitted.meta
    assert meta["measured_by"] == "external standalone script (shared/data/gpu, 2026-11-27), not warmsim's harness"
    assert "EXTERNAL STANDALONE SCRIPT, NOT BY warmsim calibrate" in meta["label"]
    assert meta["gpu"]["name"] == "NVIDIA H100 80GB HBM3" and meta["gpu"]["pcie_gen_max"] == 5
    assert meta["gpu"]["driver"] == "580.159.04" and meta["gpu"]["torch"] == "2.11.0+cu130"


def test_meta_gives_the_provenance_of_every_table():
    prov = load_profile(resolve("h100_reference")).meta["provenance"]
    assert set(prov) == set(TABLES)
    assert {t for t, p in prov.items() if p["source"] == "measured"} == {"alloc", "vmm", "interference"}
    assert {t for t, p in prov.items() if p["source"] == "analytic"} == {"disk", "assumed"}
    assert {t for t, p in prov.items() if p["source"] == "measured+analytic"} == \
        {"copy", "process", "prefill", "decode", "weight_load"}
    for t, p in prov.items():
        assert bool(p.get("measured")) == (p["source"] != "analytic"), t
        assert bool(p.get("analytic")) == (p["source"] != "measured"), t


def test_the_4_gib_pinned_copy_is_the_measured_one(ref):
    rows = load_profile(resolve("h100_reference")).rows("copy")
    (row,) = [r for r in rows if (r["direction"], r["memory"], r["bytes"]) == ("h2d", "pinned", 4 * GIB)]
    assert row["seconds"] == 0.07894059600000247  # h2d.copies, mb 4096, median_s
    assert 4 * GIB / row["seconds"] / 1e9 == pytest.approx(54.41, abs=0.01)  # the JSON's gb_per_s
    # the fit (latency + bytes / bandwidth over 1 MiB..4 GiB) is within 10% of that point, and the
    # link the simulator uses is within the PCIe Gen5 x16 anchor
    fit = ref.fitted.copies[("h2d", "pinned")]
    assert fit.seconds(4 * GIB) == pytest.approx(row["seconds"], rel=0.10)
    assert 45e9 < ref.link_bandwidth("pcie_h2d_pinned") < 55e9


def test_7b_prefill_of_1024_tokens_is_the_measured_layer_stack_plus_the_analytic_head(ref, eager):
    m = served("llama-2-7b")
    head = ref.model_compute(m).head_s(1)
    assert head == eager.model_compute(m).head_s(1)  # the head was not measured
    # the piecewise-linear curve passes through its points: 32 layers x (0.02036957 / 32) + head
    assert ref.prefill_s(m, 1024, 1) - head == pytest.approx(0.02036956787109375, rel=1e-12)
    assert ref.prefill_s(m, 1024, 1) == pytest.approx(0.0204, rel=0.01)


def test_a_batch_is_charged_as_its_tokens_on_the_batch_1_curve(ref):
    """The batch-4/8 points are not fitted; the batch-1 curve predicts them within 10%."""
    m = served("llama-2-7b")
    stack = lambda tokens, seqs: ref.prefill_s(m, tokens, seqs) - ref.model_compute(m).head_s(seqs)  # noqa: E731
    assert stack(4 * 512, 4) == pytest.approx(0.04164988708496094, rel=1e-12)  # = batch-1 2048 tokens
    assert stack(4 * 512, 4) == pytest.approx(0.04160518264770508, rel=0.01)  # measured 4 x 512
    assert stack(8 * 512, 8) == pytest.approx(0.07789625549316406, rel=0.10)  # measured 8 x 512


def test_process_phases_are_the_medians_of_the_three_runs(ref, eager):
    ph = ref.fitted.process_phases
    assert ph["import_torch"] == statistics.median([4.551782497000001, 4.803756659999998, 4.606700863999997])
    assert ph["cuda_context"] == 0.17909316400000108 and ph["first_gemm"] == 0.11225280000000026
    assert ph["python"] == eager.fitted.process_phases["python"]  # not measured
    assert ref.process_start_s() == pytest.approx(0.05 + 4.606700863999997 + 0.17909316400000108
                                                  + 0.11225280000000026)


def test_interference_by_hand(ref):
    prefill = 0.021061632156372072 / 0.020281375885009764 - 1  # 1024-token prefill during / alone
    decode = 0.011318048000335694 / 0.009796767711639405 - 1  # decode b32 c512 during / alone
    assert ref.interference().compute_slowdown == pytest.approx((prefill + decode) / 2)
    assert ref.interference().copy_slowdown == pytest.approx(1 - 0.2594890459999988 / 0.27478020399999536)


def test_vmm_map_of_8_gib_is_the_measured_remap_per_chunk_fit(ref):
    # 8 GiB in 2 MiB chunks: 4096 re-maps of kept handles, measured 0.2529 s (61.7 us each) and 1 GiB
    # 0.01879 s (36.7 us each): the per-chunk fit lies between
    per = ref.vmm_map_s(8 * GIB) / 4096
    assert 0.018793028000004597 / 512 < per < 0.2528781740000028 / 4096


def test_unmeasured_shards_and_tables_are_the_eager_analytic_ones(ref, eager):
    for name, tp in (("llama-2-13b", 1), ("llama-2-70b", 4)):
        assert ref.decode_coeffs(served(name, tp)) == eager.decode_coeffs(served(name, tp))
    assert ref.prefill_s(served("llama-2-70b", 4), 512, 1) == eager.prefill_s(served("llama-2-70b", 4), 512, 1)
    assert ref.link_bandwidth("ssd_read") == eager.link_bandwidth("ssd_read")
    assert ref.fitted.assumptions == eager.fitted.assumptions
    # 13B prefill, on the other hand, is measured
    assert ref.prefill_s(served("llama-2-13b"), 1024, 1) != eager.prefill_s(served("llama-2-13b"), 1024, 1)


def test_pageable_loads_keep_the_analytic_overhead_on_the_measured_bandwidth(ref, eager):
    n = served("llama-2-7b").shard_bytes
    assert ref.load_overhead_s("host_pageable", n) == pytest.approx(eager.load_overhead_s("host_pageable", n))
    assert ref.link_bandwidth("pcie_h2d_pageable") < 10e9 < eager.link_bandwidth("pcie_h2d_pageable")


def test_a_changed_analytic_assumption_regenerates_the_analytic_rows_only(tmp_path, monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class SlowDisk(analytic.H100EagerParams):
        nvme_bytes_per_s: float = 1e9

    monkeypatch.setattr(analytic, "H100EagerParams", SlowDisk)
    monkeypatch.setattr(analytic, "EAGER_ASSUMPTIONS", Assumptions(engine_cuda_graphs=0, nic_bytes_per_s=1e9))
    reference.build(tmp_path / "r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = ProfileCostModel.load(tmp_path / "r")
    assert c.link_bandwidth("ssd_read") == pytest.approx(1e9)
    assert c.link_bandwidth("nic") == 1e9
    shipped = resolve("h100_reference")
    for t in ("copy", "alloc", "vmm", "interference", "process", "prefill"):
        assert table_path(tmp_path / "r", t).read_text() == table_path(shipped, t).read_text(), t


def _data_copy(tmp_path: Path, edit=None) -> Path:
    d = tmp_path / "data"
    shutil.copytree(DATA, d)
    if edit:
        p = d / reference.REFERENCE_JSON
        doc = json.loads(p.read_text())
        edit(doc)
        p.write_text(json.dumps(doc))
    return d


def test_unreadable_measurements_are_one_line_naming_the_file(tmp_path):
    d = _data_copy(tmp_path)
    (d / reference.INTERFERENCE_JSON).write_text("{not json")
    with pytest.raises(UserError, match=f"{reference.INTERFERENCE_JSON}: not JSON"):
        reference.build(tmp_path / "out", d)
    (d / reference.INTERFERENCE_JSON).unlink()
    with pytest.raises(UserError, match="cannot read"):
        reference.build(tmp_path / "out", d)


def test_a_layer_stack_that_is_not_the_whole_model_is_refused(tmp_path):
    def half(doc):
        doc["ttft_e2e"]["model_bytes_layers"] //= 2

    with pytest.raises(UserError, match="model_bytes_layers"):
        reference.build(tmp_path / "out", _data_copy(tmp_path, half))


def test_an_unknown_model_is_refused(tmp_path):
    def rename(doc):
        doc["prefill"]["runs"][0]["model"] = "llama-99b"

    with pytest.raises(UserError, match="unknown model 'llama-99b'"):
        reference.build(tmp_path / "out", _data_copy(tmp_path, rename))


def test_reports_say_it_was_measured_by_an_external_script(ref, analytic_cost):
    note = "measured by an external script; 2 of 10 tables analytic, 5 in part"
    assert external_note(ref.fitted.meta) == note and external_note_of("h100_reference") == note
    assert external_note(analytic_cost.fitted.meta) is None and external_note_of("constant") is None
    assert f"B = h100_reference ({note})" in format_diff(analytic_cost, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate(EstimateRequest("llama-2-7b", "h100_reference", "host_pinned", 1024), ref)
    assert f"profile h100_reference: {note}" in format_estimate(est)
    from warmsim.experiments.outputs import _cost_kind
    from warmsim.experiments.report_html import _measured_html
    assert _cost_kind(ref) == note and _cost_kind(ConstantCostModel()) == "NOT measured: analytic or constant"
    assert _measured_html("h100_reference", True) == note
    assert _measured_html("someone_elses", True) == "measured on a GPU"


def test_check_prints_the_note_and_flags_the_vmm_create_outlier(capsys):
    assert calibrate_main(["--check", "h100_reference"]) == 1  # a measured number outside an anchor
    out = capsys.readouterr().out
    assert "sanity check of profile h100_reference (measured by an external script;" in out
    assert "VMM create per 2 MiB" in out and "2 outside their range" in out


def test_vs_reference_table(capsys):
    assert calibrate_main(["--vs-reference", "h100_reference", "h100_analytic"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| group | figure | measured | `h100_reference` | err | `h100_analytic` | err |"
    row = next(line for line in out if "llama-2-7b, 1024 tokens" in line).split(" | ")
    assert row[2:4] == ["20.37", "20.37"] and row[4] == "+0%"  # ms; the reference fit passes through it
    assert float(row[5]) == pytest.approx(26.17, abs=0.01)  # the analytic layer stack, head taken out
    assert len(out) == 2 + len(figures())


def test_vs_reference_errors_are_relative_or_percentage_points(analytic_cost):
    figs = [f for f in figures() if f.name in ("import torch", "prefill 1024 tokens, slower during a copy")]
    text = table([analytic_cost], figs).splitlines()
    assert text[2].endswith("| 2000 | -57% |")  # 2.0 s against the measured 4.607 s
    assert text[3].endswith("| 3.0% | -0.8 pp |")  # 3% against the measured 3.85%


@pytest.mark.slow
def test_a_non_editable_install_ships_the_measurements_and_rebuilds_the_profile(tmp_path, installed_site):
    target = installed_site
    installed = target / "warmsim" / "calibrate"
    assert {p.name for p in (installed / "reference_data").iterdir()} >= {reference.REFERENCE_JSON,
                                                                         reference.INTERFERENCE_JSON, "README.md"}
    out = tmp_path / "rebuilt"
    p = subprocess.run([sys.executable, "-m", "warmsim.calibrate.reference", "--out", str(out)], cwd=tmp_path,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    for t in TABLES:
        assert table_path(out, t).read_text() == table_path(installed / "profiles" / "h100_reference", t).read_text()
