"""``warmsim bench``: how fast the simulator replays traffic, and how much memory it takes.

Prints figures, not pass/fail. Each scenario is composed with hydra's compose API from
``experiments/conf`` and run through :func:`warmsim.experiments.builder.build_setup` and
:func:`warmsim.experiments.runner.run_system`, the code path of ``warmsim compare``/``run``. Every
(scenario, system) pair runs in a fresh process (``spawn``), so its peak RSS is its own; inside
it the setup (workload build) is timed once and the system's run ``--repeat`` times.

Scenarios (``--quick`` runs a reduced set in well under a minute):

- ``compare``: the default ``warmsim compare`` setup (h100x16, paper4 models, mapped_azure_conv,
  20 minutes) under static, ondemand, sllm, muxserve and warmserve;
- ``wsc_rps10`` / ``wsc_rps30``: warmserve on ``workload=warmserve_conv`` at 10 and 30 req/s;
- ``scale512``: 512 GPUs (``cluster=h100x512``), 64 models (``models=servegen64``), one hour of
  ServeGen's language client series mapped onto them (``workload=servegen_language
  workload.source=clients``, ``--scale-rate`` req/s in total), under warmserve and ondemand;
- ``day512`` (only when asked for, ``--only day512``): the paper's large-scale study, 512 GPUs, 64
  models, 24 h of the periodic ServeGen client series at ``--day-rate`` req/s (60: about 5.2 M
  requests) under ``--day-systems`` (default: every system of the paper comparison and beyond);
  ``--day-hours`` runs a shorter part of the day;
- ``scaling`` (only when asked for, ``--only scaling``): the scaling table, cost per request as
  one size grows with the others fixed: requests (``req_*``: 512 GPUs, 64 models, 60 req/s, 5 to
  40 minutes), GPUs (``gpus_*``: 16 to 512 GPUs at the same per-GPU load, 7.5 req/s and one model
  per node), models (``models_*``: 512 GPUs, 60 req/s, 8 to 64 models), under warmserve and ondemand;
- ``traces``: the trace layer's own timings (:func:`warmsim.traces.bench.run`).

Columns: wall time of one run (median, min, max over the repeats; bundle build, simulation and
result tables, as ``run_system`` does), simulated requests per wall second, simulated seconds
(start to the last request's end) per wall second, microseconds of wall time per request, SimPy
events per request, the machine's bare SimPy event rate (a tight loop of ``env.timeout`` events,
measured in the same process just before the runs) and the ratio of simulated requests per wall
second to it (a machine-independent speed: a noisy or slow machine lowers both), the process's
peak RSS, and optionally (``--tracemalloc``) the Python-heap peak of one extra run. Ratios compare
cost per request across scenarios (512 vs 16 GPUs, 30 vs 10 req/s).
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from warmsim.sim.errors import UserArgumentParser, UserError, writable_dir
from warmsim.sim.knobs import Knob

# Scale scenario: one hour of ServeGen's language clients on 64 models; prompts/outputs capped as in
# WarmServe's recipe so that every request fits the 2048-token Llama-2 context.
SCALE = ["cluster=h100x512", "models=servegen64", "workload=servegen_language", "workload.source=clients",
         "workload.max_prompt_tokens=1024", "workload.max_output_tokens=1023", "workload.min_output_tokens=3"]
SYSTEMS = ["static", "ondemand", "sllm", "muxserve", "warmserve"]
#: Every system of ``day512`` by default: the paper's comparison and the systems beyond it.
DAY_SYSTEMS = ["static", "ondemand", "sllm", "muxserve", "muxserve_replicated", "warmserve", "peerload"]
#: The scaling table's sizes: (dimension, size, overrides, models kept of servegen64).
SCALING_SYSTEMS = ["warmserve", "ondemand"]


def scaling_scenarios() -> list[Scenario]:
    """One size grows, the others stay: requests (minutes of traffic), GPUs (nodes, with the total
    rate and the models in proportion, so the per-GPU and per-model load stay), models."""
    out = []
    for minutes in (5, 10, 20, 40):
        out.append(Scenario(f"req_{minutes}min", SCALE + ["workload.total_rate=60", f"workload.duration_s={60 * minutes}"],
                            SCALING_SYSTEMS, f"requests: 512 GPUs, 64 models, 60 req/s, {minutes} min",
                            dimension="requests"))
    for nodes in (2, 8, 16, 64):
        out.append(Scenario(f"gpus_{8 * nodes}", SCALE + [f"cluster.nodes={nodes}", f"workload.total_rate={60 * nodes / 64:g}",
                                                        "workload.duration_s=600"],
                            SCALING_SYSTEMS, f"GPUs: {8 * nodes} GPUs, {nodes} models, {60 * nodes / 64:g} req/s, 10 min",
                            n_models=nodes, dimension="GPUs"))
    for n in (8, 16, 32, 64):
        out.append(Scenario(f"models_{n}", SCALE + ["workload.total_rate=60", "workload.duration_s=600"],
                            SCALING_SYSTEMS, f"models: 512 GPUs, {n} models, 60 req/s, 10 min", n_models=n,
                            dimension="models"))
    return out


@dataclass
class Scenario:
    name: str
    overrides: list[str]
    systems: list[str]
    note: str = ""
    n_models: int | None = None  # keep only the first n models of the config (scaling table)
    dimension: str = ""  # the scaling table's dimension this scenario is a size of


@dataclass
class Row:
    scenario: str
    system: str
    requests: int = 0
    sim_s: float = 0.0
    repeats: int = 0
    wall_median_s: float = float("nan")
    wall_min_s: float = float("nan")
    wall_max_s: float = float("nan")
    setup_s: float = float("nan")
    req_per_wall_s: float = float("nan")
    sim_s_per_wall_s: float = float("nan")
    us_per_request: float = float("nan")
    peak_rss_mib: float = float("nan")
    heap_peak_mib: float = float("nan")
    completed: int = 0
    events: int = 0
    events_per_request: float = float("nan")
    bare_events_per_s: float = float("nan")
    ratio_to_bare: float = float("nan")  # simulated requests per wall second / bare SimPy events per second
    gpus: int = 0
    models: int = 0
    note: str = ""
    walls: list = field(default_factory=list)


def scenarios(quick: bool, scale_rate: float, scale_duration_s: float) -> list[Scenario]:
    if quick:
        return [
            Scenario("compare", [], SYSTEMS, "default compare setup (h100x16, paper4, mapped_azure_conv 20 min)"),
            Scenario("wsc_rps10", ["workload=warmserve_conv", "workload.rps=10"], ["warmserve"],
                     "warmserve_conv, 10 req/s, 20 min"),
            Scenario("scale512_quick", SCALE + ["workload.total_rate=10", "workload.duration_s=600"],
                     ["warmserve", "ondemand"], "512 GPUs, 64 models, servegen clients, 10 req/s, 10 min"),
        ]
    return [
        Scenario("compare", [], SYSTEMS, "default compare setup (h100x16, paper4, mapped_azure_conv 20 min)"),
        Scenario("wsc_rps10", ["workload=warmserve_conv", "workload.rps=10"], ["warmserve"],
                 "warmserve_conv, 10 req/s, 20 min"),
        Scenario("wsc_rps30", ["workload=warmserve_conv", "workload.rps=30"], ["warmserve"],
                 "warmserve_conv, 30 req/s, 20 min"),
        Scenario("scale512", SCALE + [f"workload.total_rate={scale_rate:g}", f"workload.duration_s={scale_duration_s:g}"],
                 ["warmserve", "ondemand"],
                 f"512 GPUs, 64 models, servegen clients, {scale_rate:g} req/s, {scale_duration_s / 3600:g} h"),
    ]


# ---- one (scenario, system) in a fresh process ----------------------------------------------------
def bare_event_rate(n: int = 200_000, repeats: int = 3) -> float:
    """Events per second of a bare SimPy loop (one process yielding ``env.timeout``), best of
    ``repeats``: the machine's speed at the simulator's unit of work."""
    import simpy

    best = 0.0
    for _ in range(repeats):
        env = simpy.Environment()

        def loop(env):
            for _ in range(n):
                yield env.timeout(1.0)

        env.process(loop(env))
        t0 = time.perf_counter()
        env.run()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def measure(scenario: str, overrides: list[str], system: str, repeat: int, heap: bool,
            n_models: int | None = None) -> dict:
    """Build the setup, run ``system`` ``repeat`` times; wall times and peak memory (child process)."""
    import resource
    import warnings

    warnings.simplefilter("ignore")  # cost-model extrapolation notes are not what the bench measures
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from warmsim.experiments.builder import CONF_DIR, build_setup, system_config
    from warmsim.experiments.runner import run_system

    bare = bare_event_rate()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[*overrides, f"system={system}", "progress=false"])
        if n_models is not None:
            with open_dict(cfg):
                cfg.models = cfg.models[:n_models]
        t0 = time.perf_counter()
        setup = build_setup(cfg)
        setup_s = time.perf_counter() - t0
        scfg = system_config(system)
        walls, result = [], None
        for _ in range(repeat):
            result = None  # free the previous run's tables before the next one
            t0 = time.perf_counter()
            result = run_system(setup, scfg, cfg)
            walls.append(time.perf_counter() - t0)
        req = result.requests
        sim_s = float(req["finish_s"].max()) if len(req) else 0.0
        completed = int((req["status"] == "completed").sum())
        events = result.events
        result = req = None
        heap_peak = float("nan")
        if heap:
            import tracemalloc
            tracemalloc.start()
            run_system(setup, scfg, cfg)
            heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"requests": len(setup.workload), "sim_s": sim_s, "walls": walls, "setup_s": setup_s,
            "peak_rss_mib": rss_kib / 1024, "heap_peak_mib": heap_peak, "completed": completed, "events": events,
            "bare_events_per_s": bare, "gpus": setup.cluster.n_gpus, "models": len(setup.models)}


def _run_isolated(pool_ctx, *args) -> dict:
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=1, mp_context=pool_ctx) as ex:
        return ex.submit(measure, *args).result()


def _fill(row: Row, m: dict) -> Row:
    w = m["walls"]
    med = statistics.median(w)
    row.requests, row.sim_s, row.repeats, row.walls = m["requests"], m["sim_s"], len(w), w
    row.wall_median_s, row.wall_min_s, row.wall_max_s = med, min(w), max(w)
    row.setup_s, row.peak_rss_mib, row.heap_peak_mib, row.completed = (m["setup_s"], m["peak_rss_mib"],
                                                                       m["heap_peak_mib"], m["completed"])
    row.req_per_wall_s = row.requests / med if med > 0 else float("nan")
    row.sim_s_per_wall_s = row.sim_s / med if med > 0 else float("nan")
    row.us_per_request = 1e6 * med / row.requests if row.requests else float("nan")
    row.events, row.bare_events_per_s, row.gpus, row.models = m["events"], m["bare_events_per_s"], m["gpus"], m["models"]
    row.events_per_request = row.events / row.requests if row.requests else float("nan")
    row.ratio_to_bare = row.req_per_wall_s / row.bare_events_per_s
    return row


# ---- printing -----------------------------------------------------------------------------------
def _table(rows: list[Row]) -> str:
    head = ["scenario", "system", "requests", "sim h", "runs", "wall med s", "min", "max", "setup s", "req/s",
            "sim s/s", "us/req", "ev/req", "bare ev/s", "ratio", "RSS MiB", "heap MiB"]
    body = [[r.scenario, r.system, f"{r.requests}", f"{r.sim_s / 3600:.2f}", f"{r.repeats}",
             f"{r.wall_median_s:.2f}", f"{r.wall_min_s:.2f}", f"{r.wall_max_s:.2f}", f"{r.setup_s:.2f}",
             f"{r.req_per_wall_s:,.0f}", f"{r.sim_s_per_wall_s:,.0f}", f"{r.us_per_request:.0f}",
             f"{r.events_per_request:.2f}", f"{r.bare_events_per_s:,.0f}", f"{r.ratio_to_bare:.4f}",
             f"{r.peak_rss_mib:.0f}", "-" if r.heap_peak_mib != r.heap_peak_mib else f"{r.heap_peak_mib:.0f}"]
            for r in rows]
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(b) for b in body)])


def scaling_table(rows: list[Row], scens: list[Scenario]) -> str:
    """Markdown: per dimension and size, each system's cost per request and its ratio to the
    smallest size (cost per request relative to bare SimPy events, so machine noise cancels)."""
    dim = {s.name: s.dimension for s in scens if s.dimension}
    lines = ["| dimension | scenario | system | requests | GPUs | models | us/req | ev/req | ratio to bare | "
             "cost vs smallest |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    first: dict[tuple[str, str], Row] = {}
    for r in rows:
        if r.scenario not in dim or not r.repeats:
            continue
        key = (dim[r.scenario], r.system)
        base = first.setdefault(key, r)
        rel = base.ratio_to_bare / r.ratio_to_bare  # (wall per request x bare rate), relative
        lines.append(f"| {dim[r.scenario]} | {r.scenario} | {r.system} | {r.requests} | {r.gpus} | {r.models} | "
                     f"{r.us_per_request:.0f} | {r.events_per_request:.2f} | {r.ratio_to_bare:.4f} | {rel:.2f} |")
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[tuple[str, float]]:
    """Cost-per-request ratios between scenarios (same system), where both ran."""
    by = {(r.scenario, r.system): r for r in rows if r.repeats}
    out = []
    big = "scale512" if any(s == "scale512" for s, _ in by) else "scale512_quick"
    for sysname in ("warmserve", "ondemand"):
        a, b = by.get((big, sysname)), by.get(("compare", sysname))
        if a and b:
            out.append((f"{sysname}: wall per request, {big} (512 GPUs, 64 models) / compare (16 GPUs, 4 models)",
                        a.us_per_request / b.us_per_request))
    a, b = by.get(("wsc_rps30", "warmserve")), by.get(("wsc_rps10", "warmserve"))
    if a and b:
        out.append(("warmserve: wall per request, warmserve_conv 30 req/s / 10 req/s", a.us_per_request / b.us_per_request))
    for sysname in SYSTEMS:
        a, b = by.get(("compare", sysname)), by.get(("compare", "static"))
        if a and b and sysname != "static":
            out.append((f"compare: {sysname} wall / static wall", a.wall_median_s / b.wall_median_s))
    return out


def main(argv: list[str]) -> int:
    ap = UserArgumentParser(prog="warmsim bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a reduced set that runs in under a minute")
    ap.add_argument("--repeat", type=int, default=None, help="runs per (scenario, system); default 3, 1 with --quick")
    ap.add_argument("--out", default=None, help="also write the rows to this CSV file")
    ap.add_argument("--only", default=None, help="comma-separated scenario names (compare, wsc_rps10, wsc_rps30, "
                                                   "scale512, traces; day512 and scaling run only when named)")
    ap.add_argument("--scale-rate", type=float, default=50.0, help="scale512's total req/s (default 50: ~1.8e5 requests)")
    ap.add_argument("--scale-hours", type=float, default=1.0, help="scale512's simulated hours (default 1)")
    ap.add_argument("--day-rate", type=float, default=60.0, help="day512's total req/s (default 60: ~5.2e6 requests)")
    ap.add_argument("--day-hours", type=float, default=24.0, help="day512's simulated hours (default 24)")
    ap.add_argument("--day-systems", default=",".join(DAY_SYSTEMS), help="day512's systems, comma-separated")
    ap.add_argument("--tracemalloc", action="store_true", help="one extra traced run per pair: Python-heap peak")
    ap.add_argument("--no-traces", action="store_true", help="skip the trace-loader timings")
    args = ap.parse_args(argv)
    if args.repeat is not None:
        Knob("int", 1, 1000, help="runs per pair").check("--repeat", args.repeat, label="")
    for flag_, v, hi in (("--scale-rate", args.scale_rate, 1e6), ("--scale-hours", args.scale_hours, 24 * 366),
                         ("--day-rate", args.day_rate, 1e6), ("--day-hours", args.day_hours, 24 * 366)):
        Knob("float", 0, hi, lo_open=True).check(flag_, v, label="")
    from warmsim.experiments.confpath import group_choices
    known_systems = group_choices("system")
    for x in args.day_systems.split(","):
        if x.strip() and x.strip() not in known_systems:
            raise UserError(f"--day-systems: unknown system '{x.strip()}' (known: {', '.join(known_systems)})")
    if args.out:
        writable_dir(Path(args.out).absolute().parent, f"--out {args.out}")
    repeat = args.repeat or (1 if args.quick else 3)
    only = None if args.only is None else {s.strip() for s in args.only.split(",") if s.strip()}
    base = scenarios(args.quick, args.scale_rate, args.scale_hours * 3600.0)
    known = {s.name for s in base}
    known |= {"scale512", "day512", "scaling", "traces"}
    if only is not None and (not only or only - known):
        raise UserError(f"--only {args.only}: unknown scenario(s) {', '.join(sorted(only - known)) or '(none given)'} "
                        f"(known: {', '.join(sorted(known))})")
    todo = [s for s in base
            if only is None or s.name in only or (s.name.startswith("scale512") and "scale512" in only)]
    if only is not None and "day512" in only:
        day_systems = [x.strip() for x in args.day_systems.split(",") if x.strip()]
        todo.append(Scenario("day512", SCALE + [f"workload.total_rate={args.day_rate:g}",
                                                f"workload.duration_s={args.day_hours * 3600:g}"], day_systems,
                             f"512 GPUs, 64 models, servegen clients, {args.day_rate:g} req/s, {args.day_hours:g} h"))
    if only is not None and "scaling" in only:
        todo.extend(scaling_scenarios())
    do_traces = not args.no_traces and not args.quick and (only is None or "traces" in only)
    pairs = [(s, system) for s in todo for system in s.systems]

    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    bar = None
    if sys.stderr.isatty() and pairs:
        from tqdm import tqdm
        bar = tqdm(total=len(pairs), desc="bench", unit="run", leave=False)
    print(f"warmsim bench: {len(pairs)} (scenario, system) pairs, {repeat} run(s) each, one fresh process per pair"
          + (" (--quick)" if args.quick else ""), flush=True)
    t_start = time.perf_counter()
    rows: list[Row] = []
    for s, system in pairs:
        if bar is not None:
            bar.set_postfix_str(f"{s.name}/{system}")
        row = Row(s.name, system, note=s.note)
        try:
            _fill(row, _run_isolated(ctx, s.name, s.overrides, system, repeat, args.tracemalloc, s.n_models))
        except Exception as e:  # a figure, not a verdict: report the failure and go on
            row.note = f"failed: {type(e).__name__}: {e}"
            print(f"  {s.name}/{system}: {row.note}", file=sys.stderr)
        rows.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    print()
    for s in todo:
        print(f"  {s.name}: {s.note}" + (f"  [{' '.join(s.overrides)}]" if s.overrides else ""))
    print()
    print(_table(rows))
    if any(s.dimension for s in todo):
        print("\nscaling table (cost vs smallest: wall per request x bare event rate, relative to the smallest size)")
        print(scaling_table(rows, todo))
    rat = ratios(rows)
    if rat:
        print("\nratios")
        for k, v in rat:
            print(f"  {k}: {v:.2f}")

    trace_rows: list[tuple[str, float]] = []
    if do_traces:
        from warmsim.traces import bench as tbench
        trace_rows = list(tbench.run().items())
        print("\ntrace layer (seconds, uncached)")
        for k, v in trace_rows:
            print(f"  {k:45s} {v:8.3f}")
    print(f"\nbench wall time {time.perf_counter() - t_start:.1f} s")

    if args.out:
        trace_table = [Row("traces", k, repeats=1, wall_median_s=v, wall_min_s=v, wall_max_s=v,
                           note="traces.bench.run(): seconds, uncached") for k, v in trace_rows]
        cols = [k for k in Row.__dataclass_fields__ if k != "walls"] + ["walls_s"]
        with open(args.out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows + trace_table:
                d = asdict(r)
                walls = d.pop("walls")
                w.writerow([*d.values(), ";".join(f"{x:.4f}" for x in walls)])
        print(f"rows written to {args.out}")
    return 0
