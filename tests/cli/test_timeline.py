"""``warmsim timeline`` (issue 14): Chrome trace-event JSON for Perfetto, one track per GPU grouped by
node, instance and replica lifecycles, evictions, and counter tracks; the memory figure for any system."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict

import pandas as pd
import pytest

from tests.exe import warmsim_exe
from tests.figures import synthetic
from warmsim.experiments.timeline import trace_events

PHASES = {"M", "X", "i", "C"}


def check_trace(events: list[dict]) -> dict:
    """Every event is well formed; slices on a thread nest properly; returns thread names by (pid, tid)."""
    names, slices = {}, defaultdict(list)
    for e in events:
        assert e["ph"] in PHASES and isinstance(e["pid"], int) and isinstance(e["name"], str), e
        if e["ph"] == "M":
            if e["name"] == "thread_name":
                names[(e["pid"], e["tid"])] = e["args"]["name"]
            continue
        assert isinstance(e["ts"], int) and e["ts"] >= 0, e  # whole microseconds: a viewer converts them exactly
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0 and isinstance(e["tid"], int)
            slices[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
        if e["ph"] == "C":
            assert e["args"] and all(isinstance(v, (int, float)) for v in e["args"].values()), e
    for key, spans in slices.items():
        assert key in names, f"slices on an unnamed track {key}"
        stack: list[float] = []
        for a, b in sorted(spans, key=lambda s: (s[0], -s[1])):  # exactly, as Perfetto nests them
            while stack and stack[-1] <= a:
                stack.pop()
            assert not stack or b <= stack[-1], f"slices overlap without nesting on {names[key]}: {a}-{b}"
            stack.append(b)
    return names


def test_trace_events_of_a_synthetic_timeline():
    tl = synthetic.timeline()
    req = pd.DataFrame({"model": ["m-a", "m-a", "m-b"], "arrival_s": [1.0, 2.0, 31.0], "finish_s": [3.0, 9.0, 32.0]})
    ev = trace_events(tl, req, gpus_per_node=1, n_gpus=2, system="warmserve")
    names = check_trace(ev)
    assert sorted(v for v in names.values() if not v.endswith(")")) == ["GPU 0", "GPU 1"]
    procs = {e["pid"]: e["args"]["name"] for e in ev if e["name"] == "process_name"}
    assert sorted(procs.values()) == ["load (requests in flight per model)", "node 0", "node 1"]
    x = [e for e in ev if e["ph"] == "X"]
    assert any(e["name"].startswith("m-a #1") and e["dur"] == pytest.approx(51e6) for e in x)
    assert any(e["name"] == "prewarmed m-b r2" and e["dur"] == pytest.approx(30e6) for e in x)
    assert [e["name"] for e in ev if e["ph"] == "i"] == ["evict m-a", "evict m-a"]  # replica 4 on GPUs 0 and 1
    load = [(e["ts"] / 1e6, e["args"]["requests"]) for e in ev if e["ph"] == "C" and e["name"] == "in flight: m-a"]
    assert load == [(1.0, 1), (2.0, 2), (3.0, 1), (9.0, 0)]
    assert any(e["ph"] == "C" and e["name"] == "GPU 1 memory (GiB)" for e in ev)


def test_the_default_compare_timeline_is_valid_trace_event_json(tmp_path):
    exe = warmsim_exe()
    run = tmp_path / "run"
    p = subprocess.run([exe, "compare", f"hydra.run.dir={run}"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([exe, "timeline", str(run), "--system", "warmserve", "--out", str(tmp_path / "t.json"),
                        "--figure", str(tmp_path / "mem.png")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    trace = json.loads((tmp_path / "t.json").read_text())
    ev = trace["traceEvents"]
    names = check_trace(ev)
    gpu_tracks = sorted(int(v.split()[1]) for v in names.values() if not v.endswith(")"))
    assert gpu_tracks == list(range(16))  # 2 nodes x 8 GPUs, one track each
    nodes = {e["args"]["name"] for e in ev if e["name"] == "process_name"}
    assert {"node 0", "node 1"} <= nodes
    counters = {e["name"] for e in ev if e["ph"] == "C"}
    assert {f"GPU {g} memory (GiB)" for g in range(16)} <= counters
    assert {"in flight: llama-2-7b-a", "in flight: llama-2-70b"} <= counters
    x = [e for e in ev if e["ph"] == "X"]
    assert any(e["name"].startswith("prewarmed ") for e in x)       # WarmServe's prewarmed replicas
    assert any(e["name"].startswith("load weights (") for e in x)   # weight loads with their source
    assert (tmp_path / "mem.png").stat().st_size > 10_000
    # every system draws (static places everything at t=0), titled with the run's own rate
    p = subprocess.run([exe, "timeline", str(run), "--system", "static", "--figure", str(tmp_path / "s.png")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Warning" not in p.stderr, p.stderr
    p = subprocess.run([exe, "timeline", str(run), "--system", "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 2 and "not in this run" in p.stderr


def test_the_figure_title_takes_the_rate_from_the_run(tmp_path):
    from warmsim.experiments.timeline import rate_label
    (tmp_path / "config.yaml").write_text("workload: {kind: warmserve, rps: 5.0}\ncluster: {nodes: 1, gpus_per_node: 2}\n")
    assert rate_label(tmp_path) == "5 req/s"
    (tmp_path / "config.yaml").write_text("workload: {kind: mapped, duration_s: 100}\n")
    (tmp_path / "workload.json").write_text(json.dumps({"requests": 512, "knobs": {"duration_s": 100}}))
    assert rate_label(tmp_path) == "~5.1 req/s"


def test_a_fault_is_a_global_instant_in_the_trace_and_a_line_in_the_figure(tmp_path):
    exe = warmsim_exe()
    run = tmp_path / "run"
    p = subprocess.run([exe, "compare", "cluster=tiny", "models=tiny1", "workload=synthetic", "workload.duration_s=60",
                        "workload.tokens_from=null", "workload.total_rate=3", "systems=[static,ondemand]",
                        "faults.events=[{kind: gpu_down, gpu: 0, at_s: 30}]", f"hydra.run.dir={run}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    faults = pd.read_csv(run / "faults.csv")
    assert list(faults.system) == ["static", "ondemand"] and list(faults.time_s) == [30.0, 30.0]
    p = subprocess.run([exe, "timeline", str(run), "--out", str(tmp_path / "t.json")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    ev = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    check_trace(ev)
    marks = [e for e in ev if e.get("cat") == "fault"]
    # 30 s into the workload; the trace starts at the run's start, 60 s earlier (the prewarm lead)
    assert [(e["ph"], e["s"], e["ts"]) for e in marks] == [("i", "g", 90_000_000)] * 2
    assert marks[0]["name"] == "fault: GPU 0 fails at 30 s (static)"
    assert marks[0]["args"]["instances_lost"] == int(faults.instances_lost[0])
    from warmsim.figures import fig_memory_timeline
    tl = pd.read_parquet(run / "timeline.parquet")
    nums = fig_memory_timeline.draw(tl, tmp_path / "m.png", system="ondemand", gpus_per_node=2, n_gpus=2,
                                    faults=faults)
    assert nums["faults"] == [30.0]
