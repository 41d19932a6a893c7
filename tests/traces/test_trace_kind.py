"""Workloads say what they did (issue 14): the ``trace`` kind replays a trace's own request-to-model
mapping; ``duration_s=null`` is the whole trace; a short user file replays whole; caps, context-length
drops and unused columns are listed by ``experiments.outputs.workload_notes``."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.exe import warmsim_exe
from warmsim.experiments.outputs import workload_notes
from warmsim.sim.catalog import get_shape
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel
from warmsim.traces.builders import build_workload

MODELS = ["small", "big"]


@pytest.fixture
def csv(tmp_path):
    """60 requests over ~59 s: 'chat' (40) and 'code' (20), an extra column, 3 of chat over 2048 tokens."""
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens,model,user"]
    for i in range(60):
        prompt = 3000 if i in (6, 7, 9) else 100 + i
        lines.append(f"{i * 1.0:.1f},{prompt},{10 + i},{'code' if i % 3 == 2 else 'chat'},u{i}")
    p = tmp_path / "mine.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_the_trace_kind_replays_the_model_column_through_a_table(csv):
    wl = build_workload({"kind": "trace", "trace": str(csv), "model_map": {"chat": "small", "code": "big"}},
                        MODELS, seed=0)
    assert len(wl) == 60 and wl.duration_s == pytest.approx(59.0, abs=1e-6)
    assert np.bincount(wl.model).tolist() == [40, 20]
    assert (wl.model[2::3] == 1).all()  # request i of 'code' (i % 3 == 2) went to 'big'
    assert wl.meta["mapping"] == {"chat": "small", "code": "big"}
    notes = wl.meta["notes"]
    assert any("duration_s=null" in n for n in notes) and any("not used: user" in n for n in notes)


def test_trace_models_map_by_name_or_fail_or_drop(csv):
    wl = build_workload({"kind": "trace", "trace": str(csv)}, ["chat", "code"], seed=0)
    assert np.bincount(wl.model).tolist() == [40, 20]
    with pytest.raises(UserError, match="code of .* map to no served model.*model_map"):
        build_workload({"kind": "trace", "trace": str(csv)}, ["chat", "other"], seed=0)
    wl = build_workload({"kind": "trace", "trace": str(csv), "unmapped": "drop"}, ["chat", "other"], seed=0)
    assert len(wl) == 40 and wl.meta["dropped_rows"] == 20
    with pytest.raises(UserError, match="model_map: 'nope' is not a served model"):
        build_workload({"kind": "trace", "trace": str(csv), "model_map": {"chat": "nope"}}, MODELS, seed=0)


def test_a_short_user_file_replays_whole_and_null_means_the_whole_trace(csv):
    wl = build_workload({"kind": "mapped", "trace": str(csv)}, MODELS, seed=0)  # duration_s 1200 by default
    assert len(wl) == 60 and wl.duration_s == pytest.approx(59.0, abs=1e-6)
    assert any("replayed whole" in n for n in wl.meta["notes"])
    assert any("model column (2 names) is not used" in n for n in wl.meta["notes"])
    wl = build_workload({"kind": "mapped", "trace": "azure2023_conv", "duration_s": None}, MODELS, seed=0)
    assert len(wl) == 19366
    with pytest.raises(UserError, match="ends after the trace"):  # a shipped trace's window still must fit
        build_workload({"kind": "mapped", "duration_s": 5000}, MODELS, seed=0)


def test_workload_notes_name_caps_and_context_length_drops(csv):
    wl = build_workload({"kind": "trace", "trace": str(csv), "model_map": {"chat": "small", "code": "big"},
                         "max_output_tokens": 20}, MODELS, seed=0)
    shape = get_shape("llama-2-7b")
    notes = workload_notes(wl, {m: ServedModel(m, shape, 1) for m in MODELS})
    assert "49 of 60 outputs (81.7%) capped at 20 tokens (workload.max_output_tokens)" in notes
    over = [n for n in notes if "exceed its context length" in n]
    assert over == ["3 of 40 requests of small (7.5%) exceed its context length (2048 tokens, prompt + output) and "
                    "will be dropped (exceeds_max_model_len); workload.max_prompt_tokens caps prompts"]


def test_the_run_prints_what_the_workload_builder_changed_first(csv, tmp_path):
    out = tmp_path / "r"
    p = subprocess.run([warmsim_exe(), "compare", "cluster=tiny", "models=pair7b", "systems=[static]",
                        "workload=trace", f"workload.trace={csv}",
                        "workload.model_map={chat: llama-2-7b-a, code: llama-2-7b-b}", f"hydra.run.dir={out}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[:4]
    assert first[0].startswith("workload: 60 requests over 59 s (trace") and "not used: user" in "".join(first)
    assert any("3 of 40 requests of llama-2-7b-a" in x for x in first)
    report = (out / "report.md").read_text()
    assert "## What the workload builder changed" in report and "exceed its context length" in report
