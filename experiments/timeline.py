"""``warmsim timeline RUN_DIR [--system S] [--out trace.json] [--figure memory.png]``: a run's
timeline as Chrome trace-event JSON, for ui.perfetto.dev and chrome://tracing.

Layout (``docs/timeline.md``): one process (``pid``) per node of each system, one thread (``tid``) per
GPU; an instance's lifecycle is a slice from its start to its stop with its states nested inside
(``starting``, ``loading`` with the weight source, ``initialising``, ``active``, ``draining``); a
prewarmed replica is a slice with ``loading`` (source), ``ready`` and ``pending`` inside, ending when
it is activated or evicted; evictions (with their reason, e.g. ``KV reclaimed by instance 8``: KV
lending taking blocks back) are instant events. Slices that overlap on one GPU (MuxServe's
co-located engines, a replica next to an instance) go to extra lanes of that GPU (``GPU 3 (2)``),
so every thread holds properly nested slices. Counter tracks (``"ph": "C"``): per GPU its memory
(weights, KV cache, prewarmed weights, GiB), and per model its requests in flight (from
requests.parquet); with ``steps.parquet`` (``output.steps=true``) one process of engine counters:
per instance its batch and queues (running, waiting) and its KV blocks (used, cached, lent) after
each step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.experiments.outputs import read_config
from warmsim.sim.errors import UserArgumentParser, UserError, figure_file

GIB = float(2**30)
US = 1e6


def _us(t: float) -> int:
    """Seconds of simulated time as the trace's whole microseconds. Whole numbers, so that a viewer's
    conversion to nanoseconds is exact: slices that touch (a state ending as the next begins) neither
    overlap nor leave a gap by float noise, and every state nests in its lifecycle slice."""
    return int(round(t * US))
#: Instance states in lifecycle order; the end states close the instance's slice.
INSTANCE_STATES = ("starting", "loading", "initialising", "active", "draining")
INSTANCE_END = ("stopped", "failed")
#: Replica states that keep a replica on its GPUs; the others end it.
REPLICA_LIVE = ("loading", "ready", "pending")


def _gpus(s) -> list[int]:
    return [int(x) for x in str(s).split(",") if x.strip() not in ("", "nan", "None")]


def _spans(events: pd.DataFrame, end_s: float, live, closing) -> list[dict]:
    """One dict per object id: model, gpus, start, end, and its (state, start, end, detail) phases."""
    out = []
    for oid, g in events.sort_values("time_s", kind="stable").groupby("id", sort=False):
        times = g["time_s"].to_numpy(dtype=float)
        states = g["state"].astype(str).to_numpy()
        details = g["detail"].fillna("").astype(str).to_numpy()
        phases, end, how = [], end_s, "running at the end"
        for i, (t, s, d) in enumerate(zip(times, states, details)):
            if closing(s):
                end, how = float(t), s + (f" ({d})" if d else "")
                break
            nxt = float(times[i + 1]) if i + 1 < len(times) else end_s
            if live(s):
                phases.append((s, float(t), nxt, d))
        out.append({"id": int(oid), "model": str(g["model"].iloc[0]), "gpus": _gpus(g["gpus"].iloc[0]),
                    "start": float(times[0]), "end": max(end, float(times[0])), "how": how, "phases": phases,
                    "source": next((d for s, d in zip(states, details) if d and s in ("loading", "starting")),
                                   details[0] if len(details) else "")})
    return out


class _Lanes:
    """Per GPU, lanes of non-overlapping slices (times in the trace's whole microseconds): ``tid`` of
    lane 0 is the GPU's own track."""

    def __init__(self, stride: int):
        self.stride = stride
        self.ends: dict[int, list[int]] = {}

    def tid(self, gpu: int, start: int, end: int) -> tuple[int, int]:
        ends = self.ends.setdefault(gpu, [])
        for k, e in enumerate(ends):
            if start >= e:
                ends[k] = end
                return gpu + k * self.stride, k
        ends.append(end)
        return gpu + (len(ends) - 1) * self.stride, len(ends) - 1


def trace_events(timeline: pd.DataFrame, requests: pd.DataFrame | None, *, gpus_per_node: int, n_gpus: int,
                 system: str, pid_base: int = 0, label: str = "") -> list[dict]:
    """The trace events of one system (see the module docstring)."""
    tl = timeline
    end_s = float(max(tl["time_s"].max() if len(tl) else 0.0,
                      np.nanmax(requests["finish_s"].to_numpy(dtype=float), initial=0.0)
                      if requests is not None and len(requests) else 0.0))
    n_nodes = max(1, -(-n_gpus // gpus_per_node))
    prefix = f"{label} " if label else ""
    ev: list[dict] = []
    pid = lambda node: pid_base + node + 1  # noqa: E731
    for node in range(n_nodes):
        ev.append({"ph": "M", "name": "process_name", "pid": pid(node), "tid": 0,
                   "args": {"name": f"{prefix}node {node}"}})
        ev.append({"ph": "M", "name": "process_sort_index", "pid": pid(node), "tid": 0,
                   "args": {"sort_index": pid(node)}})
    named: set[int] = set()
    lanes = _Lanes(stride=max(n_gpus, 1))

    def thread(gpu: int, tid: int, lane: int) -> None:
        if tid in named:
            return
        named.add(tid)
        node = gpu // gpus_per_node
        ev.append({"ph": "M", "name": "thread_name", "pid": pid(node), "tid": tid,
                   "args": {"name": f"GPU {gpu}" + (f" ({lane + 1})" if lane else "")}})
        ev.append({"ph": "M", "name": "thread_sort_index", "pid": pid(node), "tid": tid,
                   "args": {"sort_index": gpu * 100 + lane}})

    for g in range(n_gpus):
        thread(g, g, 0)  # every GPU has its track, busy or not

    def slices(obj: dict, cat: str, title: str) -> None:
        start, end = _us(obj["start"]), max(_us(obj["end"]), _us(obj["start"]))
        for gpu in obj["gpus"]:
            tid, lane = lanes.tid(gpu, start, end)
            thread(gpu, tid, lane)
            base = {"pid": pid(gpu // gpus_per_node), "tid": tid, "cat": cat}
            ev.append({**base, "ph": "X", "name": title, "ts": start, "dur": end - start,
                       "args": {"id": obj["id"], "model": obj["model"], "gpus": ",".join(map(str, obj["gpus"])),
                                "source": obj["source"], "ended": obj["how"]}})
            for state, t0, t1, detail in obj["phases"]:
                a, b = max(_us(t0), start), min(_us(t1), end)  # inside the lifecycle slice, exactly
                if b < a:
                    continue
                name = f"load weights ({detail})" if state == "loading" and detail else state
                ev.append({**base, "ph": "X", "name": name, "ts": a, "dur": b - a,
                           "args": {"state": state, "detail": detail}})

    inst = tl[tl["kind"] == "instance"]
    for obj in _spans(inst, end_s, lambda s: s in INSTANCE_STATES, lambda s: s in INSTANCE_END):
        how = "from a prewarmed replica" if obj["source"] == "prewarmed" else f"weights from {obj['source']}"
        slices(obj, "instance", f"{obj['model']} #{obj['id']} ({how})")
    rep = tl[tl["kind"] == "replica"]
    reps = _spans(rep, end_s, lambda s: s in REPLICA_LIVE, lambda s: s not in REPLICA_LIVE)
    for obj in reps:
        slices(obj, "prewarm", f"prewarmed {obj['model']} r{obj['id']}")
    for _, e in rep[rep["state"].astype(str) == "evicted"].iterrows():
        why = str(e["detail"] or "")
        for gpu in _gpus(e["gpus"]):
            ev.append({"ph": "i", "s": "t", "pid": pid(gpu // gpus_per_node), "tid": gpu,
                       "cat": "kv_lending" if why.startswith("KV reclaimed") else "eviction",
                       "name": f"evict {e['model']}" + (f": {why}" if why else ""), "ts": _us(float(e["time_s"])),
                       "args": {"replica": int(e["id"]), "reason": why}})
    mem = tl[tl["kind"] == "memory"].sort_values("time_s", kind="stable")
    seen = set(mem["gpu"].dropna().astype(int))
    for gpu in range(n_gpus):  # every GPU has its memory track; an unused one stays at 0
        if gpu not in seen:
            ev.append({"ph": "C", "pid": pid(gpu // gpus_per_node), "name": f"GPU {gpu} memory (GiB)", "ts": 0,
                       "args": {"weights": 0.0, "kv_cache": 0.0, "prewarmed": 0.0}})
    for row in mem.itertuples(index=False):
        gpu = int(row.gpu)
        used, pw, kv = float(row.used_bytes), float(row.prewarm_bytes), float(row.kv_bytes)
        ev.append({"ph": "C", "pid": pid(gpu // gpus_per_node), "name": f"GPU {gpu} memory (GiB)",
                   "ts": _us(float(row.time_s)),
                   "args": {"weights": round(max(used - pw - kv, 0.0) / GIB, 4), "kv_cache": round(kv / GIB, 4),
                            "prewarmed": round(pw / GIB, 4)}})
    if requests is not None and len(requests):
        load_pid = pid_base + n_nodes + 1
        ev.append({"ph": "M", "name": "process_name", "pid": load_pid, "tid": 0,
                   "args": {"name": f"{prefix}load (requests in flight per model)"}})
        ev.append({"ph": "M", "name": "process_sort_index", "pid": load_pid, "tid": 0,
                   "args": {"sort_index": load_pid}})
        for model, r in requests.groupby("model", sort=True):
            arr = r["arrival_s"].to_numpy(dtype=float)
            fin = r["finish_s"].to_numpy(dtype=float)
            fin = np.where(np.isfinite(fin), fin, end_s)
            t = np.concatenate([arr, fin])
            d = np.concatenate([np.ones_like(arr), -np.ones_like(fin)])
            order = np.lexsort((d, t))  # at equal times a finish (-1) before an arrival
            t, level = t[order], np.cumsum(d[order])
            keep = np.r_[t[1:] != t[:-1], True]  # the last level at each time
            for ts, n in zip(t[keep], level[keep]):
                ev.append({"ph": "C", "pid": load_pid, "name": f"in flight: {model}", "ts": _us(float(ts)),
                           "args": {"requests": int(n)}})
    return ev


def step_counter_events(steps: pd.DataFrame, pid: int, label: str = "") -> list[dict]:
    """Counter tracks from a run's per-step rows: per instance, its batch (from each step's start, 0
    while idle), running and waiting sequences and KV blocks used / cached / lent after each step."""
    if steps is None or not len(steps):
        return []
    prefix = f"{label} " if label else ""
    ev = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
           "args": {"name": f"{prefix}engines (per-step metrics)"}},
          {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}}]
    for inst, g in steps.sort_values(["instance", "start_s"], kind="stable").groupby("instance", sort=True):
        name = f"instance {int(inst)} ({g['model'].iloc[0]})"
        t0s, t1s = g["start_s"].to_numpy(dtype=float), g["end_s"].to_numpy(dtype=float)
        nxt = np.r_[t0s[1:], np.inf]
        for t0, t1, after, batch, running, waiting, used, cached, lent in zip(
                t0s, t1s, nxt, g["batch"], g["running"], g["waiting"], g["kv_used"], g["kv_cached"], g["kv_lent"]):
            ev.append({"ph": "C", "pid": pid, "name": f"{name} batch", "ts": _us(t0), "args": {"batch": int(batch)}})
            if after > t1:  # idle until its next step
                ev.append({"ph": "C", "pid": pid, "name": f"{name} batch", "ts": _us(t1), "args": {"batch": 0}})
            ev.append({"ph": "C", "pid": pid, "name": f"{name} sequences", "ts": _us(t1),
                       "args": {"running": int(running), "waiting": int(waiting)}})
            ev.append({"ph": "C", "pid": pid, "name": f"{name} KV blocks", "ts": _us(t1),
                       "args": {"used": int(used), "cached": int(cached), "lent": int(lent)}})
    return ev


#: Columns of timeline.parquet the trace reads (docs/timeline.md).
TIMELINE_COLUMNS = ("time_s", "kind", "id", "model", "gpus", "state", "detail", "gpu", "used_bytes", "prewarm_bytes",
                    "kv_bytes")


def _read_table(f: Path, columns, read=pd.read_parquet) -> pd.DataFrame:
    """A run's table (parquet unless ``read`` says otherwise) with ``columns``, or a one-line UserError
    naming the file."""
    try:
        t = read(f)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise UserError(f"{f}: not a readable table ({' '.join(str(e).split())[:200]})") from None
    missing = [c for c in columns if c not in t.columns]
    if missing:
        raise UserError(f"{f}: lacks column(s) {', '.join(missing)} (docs/timeline.md)")
    return t


def read_faults(run_dir: Path) -> pd.DataFrame:
    """The run's faults.csv (empty, same columns, when the run had no faults)."""
    from warmsim.sim.faults import FAULT_COLUMNS
    f = Path(run_dir) / "faults.csv"
    if not f.is_file():
        return pd.DataFrame(columns=list(FAULT_COLUMNS))
    return _read_table(f, FAULT_COLUMNS, pd.read_csv)


def _run_info(run_dir: Path) -> tuple[dict, int, int]:
    cfg = read_config(run_dir)
    cl = cfg.get("cluster") or {}
    gpn = int(cl.get("gpus_per_node") or 8)
    return cfg, gpn, int(cl.get("nodes") or 1) * gpn


def build_trace(run_dir: Path, system: str | None = None) -> dict:
    """The trace of ``run_dir`` (one system, or every system of the run: processes per system)."""
    run_dir = Path(run_dir)
    f = run_dir / "timeline.parquet"
    if not f.is_file():
        raise UserError(f"{run_dir}: no timeline.parquet (a run with output.timeline=false, or not a run directory)")
    tl = _read_table(f, TIMELINE_COLUMNS)
    req = _read_table(run_dir / "requests.parquet", ("arrival_s", "finish_s", "model")) \
        if (run_dir / "requests.parquet").is_file() else None
    steps = pd.read_parquet(run_dir / "steps.parquet") if (run_dir / "steps.parquet").is_file() else None
    cfg, gpn, n_gpus = _run_info(run_dir)
    systems = list(dict.fromkeys(tl["system"].astype(str))) if "system" in tl else [""]
    if system is not None:
        if system not in systems:
            raise UserError(f"warmsim timeline: --system {system}: not in this run (systems: {', '.join(systems)})")
        systems = [system]
    top = max([n_gpus] + [g + 1 for s in tl.loc[tl["kind"] != "memory", "gpus"].dropna() for g in _gpus(s)]
              + [int(x) + 1 for x in tl["gpu"].dropna()])
    n_gpus = -(-top // gpn) * gpn
    events: list[dict] = []
    for k, s in enumerate(systems):
        part = tl[tl["system"] == s] if s else tl
        rq = None if req is None else (req[req["system"] == s] if s and "system" in req else req)
        events += trace_events(part, rq, gpus_per_node=gpn, n_gpus=n_gpus, system=s, pid_base=k * 1000,
                               label=s if len(systems) > 1 else "")
        if steps is not None:
            st = steps[steps["system"] == s] if s and "system" in steps else steps
            events += step_counter_events(st, k * 1000 + 999, label=s if len(systems) > 1 else "")
    faults = read_faults(run_dir)
    for k, s in enumerate(systems):
        rows = faults[faults["system"].astype(str) == s] if s and len(faults) else faults
        for r in rows.itertuples(index=False):
            events.append({"ph": "i", "s": "g", "pid": k * 1000 + 1, "tid": 0, "cat": "fault",
                           "name": f"fault: {r.fault}" + (f" ({s})" if len(systems) > 1 and s else ""),
                           "ts": _us(float(r.time_s)),
                           "args": {"instances_lost": int(r.instances_lost), "replicas_lost": int(r.replicas_lost),
                                    "requests_retried": int(r.requests_retried),
                                    "requests_dropped": int(r.requests_dropped)}})
    # A run with a prewarm lead starts before 0 (sim.prewarm_lead_s); trace viewers want ts >= 0, so the
    # whole trace moves right by the lead: ts 0 is the run's start, the first request may come at the lead.
    shift = max(0, -min((e["ts"] for e in events if "ts" in e), default=0))
    for e in events:
        if "ts" in e:
            e["ts"] += shift
    wl = cfg.get("workload") or {}
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "metadata": {"warmsim_run": str(run_dir), "systems": systems, "gpus_per_node": gpn, "gpus": n_gpus,
                         "workload": {k: wl.get(k) for k in ("kind", "trace", "rps", "duration_s") if k in wl},
                         "time_unit": "ts in microseconds of simulated time"
                                      + (f", moved right by the {shift / 1e6:g}-s prewarm lead" if shift else "")}}


def rate_label(run_dir: Path) -> str:
    """The run's request rate for titles: ``workload.rps`` from its config, else requests / duration."""
    cfg, _, _ = _run_info(run_dir)
    wl = cfg.get("workload") or {}
    if isinstance(wl.get("rps"), (int, float)):
        return f"{float(wl['rps']):g} req/s"
    try:
        meta = json.loads((run_dir / "workload.json").read_text())
        n, dur = float(meta.get("requests")), float(meta.get("knobs", {}).get("duration_s") or wl.get("duration_s"))
        return f"~{n / dur:.2g} req/s"
    except (OSError, ValueError, TypeError, AttributeError):
        return ""


def main(argv: list[str]) -> int:
    p = UserArgumentParser(prog="warmsim timeline", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a run directory (holding timeline.parquet)")
    p.add_argument("--system", default=None, help="one system of the run (default: every system, a process group each)")
    p.add_argument("--out", type=Path, default=None, help="the trace file (default RUN_DIR/timeline[-SYSTEM].json)")
    p.add_argument("--figure", type=Path, default=None,
                   help="also draw the memory-timeline figure of --system (or the run's first system) to this PNG")
    args = p.parse_args(argv)
    if not args.run_dir.is_dir():
        raise UserError(f"warmsim timeline: {args.run_dir}: no such directory")
    if args.figure is not None:
        figure_file(args.figure, f"warmsim timeline: --figure {args.figure}")
    trace = build_trace(args.run_dir, args.system)
    out = args.out or args.run_dir / (f"timeline-{args.system}.json" if args.system else "timeline.json")
    if out.is_dir():
        raise UserError(f"warmsim timeline: --out {out}: is a directory; give a file name ending in .json")
    from warmsim.experiments.outputs import atomic_write
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write_text(json.dumps(trace, separators=(",", ":"))))
    except OSError as e:
        raise UserError(f"warmsim timeline: --out {out}: cannot write ({e.strerror or e})") from None
    n = sum(1 for e in trace["traceEvents"] if e["ph"] != "M")
    print(f"wrote {out}: {n} events, systems {', '.join(trace['metadata']['systems'])}; "
          "open it in https://ui.perfetto.dev (Open trace file) or chrome://tracing")
    if args.figure is not None:
        from warmsim.figures import fig_memory_timeline
        system = args.system or trace["metadata"]["systems"][0]
        tl = _read_table(args.run_dir / "timeline.parquet", TIMELINE_COLUMNS)
        rate = rate_label(args.run_dir)
        end = max((e["ts"] + e.get("dur", 0.0)) / US for e in trace["traceEvents"] if "ts" in e) if n else None
        fig_memory_timeline.draw(tl, args.figure, system=system, gpus_per_node=trace["metadata"]["gpus_per_node"],
                                 n_gpus=trace["metadata"]["gpus"], end_s=end, title_extra=f" at {rate}" if rate else "",
                                 faults=read_faults(args.run_dir))
        print(f"wrote {args.figure}")
    return 0
