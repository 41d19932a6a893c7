"""``output.steps=true`` (issue 24): steps.parquet next to the other tables, ``Run.steps`` in the API, and
engine counter tracks in ``warmsim timeline``; off by default (no file, no counters)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd

from tests.cli.test_timeline import check_trace

SMALL = ["cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=60", "workload.total_rate=2",
         "workload.max_prompt_tokens=1024", "workload.max_output_tokens=256", "systems=[static,ondemand]",
         "engine.prefix_caching=true", "workload.prefix={kind: multi_turn, sessions: 4, system_prompt_tokens: 512}"]


def test_steps_parquet_and_its_counters_in_the_timeline(tmp_path):
    exe = shutil.which("warmsim")
    run = tmp_path / "run"
    p = subprocess.run([exe, "compare", *SMALL, "output.steps=true", f"hydra.run.dir={run}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    st = pd.read_parquet(run / "steps.parquet")
    assert set(st.system) == {"static", "ondemand"} and set(st.kind) <= {"prefill", "decode"}
    assert (st.kv_cached > 0).any() and (st.cached_tokens > 0).any()  # the recipe's shared system prompt hits
    assert "steps.parquet" in json.loads((run / "COMPLETE").read_text())["files"]
    summary = pd.read_csv(run / "summary.csv")
    assert (summary.prefix_hit_ratio > 0).all()
    p = subprocess.run([exe, "timeline", str(run), "--system", "static", "--out", str(tmp_path / "t.json")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    ev = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    check_trace(ev)
    counters = {e["name"] for e in ev if e["ph"] == "C"}
    inst = sorted(set(st[st.system == "static"].instance))
    for i in inst:
        assert {f"instance {i} (llama-2-7b) {k}" for k in ("batch", "sequences", "KV blocks")} <= counters
    assert any(e["name"] == "process_name" and e["args"]["name"] == "engines (per-step metrics)" for e in ev)


def test_no_steps_file_by_default(tmp_path):
    from warmsim.experiments.api import compare, config
    r = compare(config(*SMALL[:-2], "systems=[static]"), out=tmp_path / "run")
    assert not (tmp_path / "run" / "steps.parquet").exists()
    assert (r.summary.prefix_hit_ratio == 0).all()
