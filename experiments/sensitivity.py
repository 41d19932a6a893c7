"""``warmsim sensitivity``: every paper claim as a range over the choices that are not measured or not
sourced.

One knob at a time, the others at their defaults: each knob has two or three values (the default
first) and a line saying why it is uncertain. The paper setup's experiments are rerun for each value
(``headline``: the default compare; ``ablation``: ``experiment=paper_ablation``; ``capacity``: WarmServe
and MuxServe over a rate grid), each claim of :mod:`warmsim.experiments.claims` is computed on every
run, and the result is

- ``sensitivity.csv``: one row per (claim, knob, value) with warmsim's number;
- ``claims.md``: the claims table with the range over every knob value, whether the paper's number
  lies inside it, and the knob that moves the claim most;
- ``tornado_<claim>.png``: a tornado figure per claim (:mod:`warmsim.figures.fig_sensitivity`).

Runs go through :mod:`warmsim.experiments.jobs` (parallel, resumable with ``--reuse``, a progress line
per run), one ``warmsim compare`` each, under ``<out>/runs/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from warmsim.sim.errors import UserError

#: The claims' experiments: the overrides every run of it gets, and the systems it needs.
EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "headline": (),
    "ablation": ("experiment=paper_ablation",),
    "capacity": ("systems=[muxserve,warmserve]",),
}


@dataclass(frozen=True)
class Knob:
    """A choice that is not measured or not sourced: its values (label -> overrides; the first is the
    default, with no override), why it is uncertain, and the experiments it can move."""

    name: str
    what: str
    values: tuple[tuple[str, tuple[str, ...]], ...]
    why: str
    experiments: tuple[str, ...] = ("headline", "ablation", "capacity")
    #: ``"warmserve_source"``-style knobs are expanded per system (see :func:`_expand`).
    per_system: str | None = None


def _stage(name: str, what: str, why: str, experiments=("headline", "ablation")) -> Knob:
    return Knob(name, what, (("x1", ()), ("x0.5", (f"cost.scale={{{name}: 0.5}}",)),
                             ("x2", (f"cost.scale={{{name}: 2}}",))), why, experiments)


#: Every knob, with why it is uncertain (sources in docs/warmserve.md "The start path", docs/baselines.md).
KNOBS: tuple[Knob, ...] = (
    Knob("sllm_pool", "ServerlessLLM's host-memory pool at t=0",
         (("warm", ()), ("empty", ("overrides.sllm.host_cache_preload=false",))),
         "the artifact ships no ServerlessLLM deployment, so whether its checkpoint store held the models "
         "when the run began is unknown (warm is warmsim's steady-state choice)", ("headline",)),
    Knob("profile", "the cost profile: the real H100 (external script) or the analytic eager profile",
         (("h100_reference", ()), ("analytic", ("cost=h100_eager",))),
         "h100_reference measured 7B/13B eager steps, copies and the process start on one H100; the rest "
         "(70B, disk, start stages) is analytic in both; no profile was measured by warmsim's harness"),
    Knob("engines", "engines in eager mode or with CUDA graphs",
         (("eager", ()), ("graphs", ("cost=h100_analytic",))),
         "WarmServe's and MuxServe's engines pass --enforce-eager in the artifact; ServerlessLLM's engine "
         "configuration is not released (graphs: the analytic CUDA-graph profile)"),
    _stage("process", "process start (import torch, CUDA context)",
           "4.9 s on the real H100 of h100_reference (a bare torch script: a serving engine's worker may differ); "
           "the analytic profiles assume 2.75 s"),
    _stage("engine_process", "the serving engine's imports",
           "not measured here; one public import time of vLLM 0.8 (vllm-project/vllm#15128)"),
    _stage("engine_prepare", "engine configuration, tokenizer, worker hand-off",
           "the artifact does not log it; tokenizer time from one A100 log, the rest our estimate"),
    _stage("tp_comm", "the TP communicator",
           "one public nccl-tests timing (NVIDIA/nccl-tests#273) for 8 ranks; TP 1 is our estimate"),
    _stage("engine_init", "engine construction, KV set-up, API server",
           "coarse public log resolution (vllm-project/vllm#20707) and our estimates"),
    _stage("page_cache_read", "page-cache read rate of the artifact's loader",
           "derived from a vLLM load log on an A100 host; no x86 H100 pageable read measured (issue 20)"),
    Knob("profile_size", "the engines' profiling forward (max_batched_tokens)",
         (("100000", ()), ("8192", ("engine.max_batched_tokens=8192",))),
         "the artifact's engines use 100,000; ServerlessLLM's engine arguments are not released (8192 is "
         "vLLM's usual budget with chunked prefill off)", ("headline", "ablation")),
    Knob("warmserve_source", "WarmServe's weight source",
         (("page_cache", ()), ("pinned", ())),
         "the README's launch line uses the page-cache loader (get_weights); --use-loaded-model (pinned "
         "/dev/shm) is optional in the artifact", per_system="host_pinned"),
    Knob("mux_plan", "the rate MuxServe's placement is planned for",
         (("15 req/s", ()), ("run rate", ("overrides.muxserve.initial.plan_rps=null",)),
          ("30 req/s", ("overrides.muxserve.initial.plan_rps=30",))),
         "the artifact loads fixed MuxServe placement YAMLs whose planning rate is not released",
         ("headline", "capacity")),
    Knob("alpha", "popularity exponent",
         (("0.5", ()), ("2", ("workload.alpha=2",))),
         "the artifact's argparse default is 0.5, its README's example command uses 2; the paper's value "
         "per figure is not stated"),
    Knob("contention", "slowdown per busy co-located engine (MuxServe)",
         (("0", ()), ("0.2", ("overrides.muxserve.sharing.contention=0.2",))),
         "no measurement of two engines computing at once on one GPU (issue 20)", ("headline", "capacity")),
    Knob("service_batch", "batch assumed when turning request history into in-flight load",
         (("16", ()), ("8", ("sim.service_estimate_batch=8",)), ("32", ("sim.service_estimate_batch=32",))),
         "our choice (sim.service_estimate_batch); it sizes static's instances and WarmServe's history",
         ("headline", "ablation")),
    Knob("min_kv_tokens", "KV tokens every MuxServe engine must hold",
         (("2048", ()), ("1024", ("overrides.muxserve.initial.min_kv_tokens=1024",)),
          ("4096", ("overrides.muxserve.initial.min_kv_tokens=4096",))),
         "our choice (one max-length sequence); MuxServe's own planner is not released for this setup",
         ("headline", "capacity")),
)

#: The rate grids of the capacity experiment (req/s).
CAPACITY_RATES = {"quick": (10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0),
                  "full": tuple(5.0 + 2.5 * i for i in range(17))}  # 5 .. 45 in steps of 2.5
#: Knobs the quick capacity sweep runs (the full one runs every knob that lists capacity).
QUICK_CAPACITY_KNOBS = ("mux_plan", "alpha", "profile")


@dataclass
class Plan:
    """The runs of one sensitivity study."""

    out: Path
    quick: bool
    duration_s: float
    seed: int
    knobs: tuple[Knob, ...]
    experiments: tuple[str, ...]
    jobs: list = field(default_factory=list)
    #: job name -> (experiment, knob name, value label, rate or None)
    index: dict = field(default_factory=dict)


def _system_names(experiment: str) -> list[str]:
    from warmsim.experiments.confpath import compose
    cfg = compose(list(EXPERIMENTS[experiment]))
    return [str(s) for s in cfg.systems]


def _expand(knob: Knob, label: str, overrides: tuple[str, ...], experiment: str) -> tuple[str, ...]:
    """A per-system knob's overrides for the WarmServe-family systems of ``experiment`` (the activator's
    miss source, and the placer's source where the system has a placer)."""
    if knob.per_system is None or label == knob.values[0][0]:
        return overrides
    from warmsim.experiments.confpath import compose
    from warmsim.experiments.systems import resolve
    cfg = compose(list(EXPERIMENTS[experiment]))
    out = list(overrides)
    for scfg in resolve(cfg, [str(s) for s in cfg.systems]):
        name = str(scfg.name)
        act, placer = scfg.get("activator"), scfg.get("placer")
        if act is not None and "miss_source" in act:
            out.append(f"overrides.{name}.activator.miss_source={knob.per_system}")
        if placer is not None and "source" in placer and name.startswith("warmserve"):
            out.append(f"overrides.{name}.placer.source={knob.per_system}")
    return tuple(out)


def plan(out: Path, *, quick: bool, seed: int = 0, knobs: tuple[str, ...] | None = None,
         experiments: tuple[str, ...] | None = None, duration_s: float | None = None) -> Plan:
    """Every run of the study: per experiment, the default, then each knob value that differs from it."""
    from warmsim.experiments.jobs import Job

    chosen = KNOBS if knobs is None else tuple(k for k in KNOBS if k.name in knobs)
    unknown = set(knobs or ()) - {k.name for k in KNOBS}
    if unknown:
        raise UserError(f"sensitivity: unknown knob(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(k.name for k in KNOBS)})")
    exps = tuple(EXPERIMENTS) if experiments is None else experiments
    bad = set(exps) - set(EXPERIMENTS)
    if bad:
        raise UserError(f"sensitivity: unknown experiment(s) {', '.join(sorted(bad))} (known: {', '.join(EXPERIMENTS)})")
    dur = duration_s if duration_s is not None else (600.0 if quick else 1200.0)
    p = Plan(Path(out), quick, dur, seed, chosen, exps)
    common = [f"workload.duration_s={dur:g}", f"seed={seed}", "progress=false"]
    for exp in exps:
        variants = [("default", "default", ())]
        for k in chosen:
            if exp not in k.experiments or (exp == "capacity" and quick and k.name not in QUICK_CAPACITY_KNOBS):
                continue
            for label, over in k.values[1:]:
                variants.append((k.name, label, _expand(k, label, over, exp)))
        rates = CAPACITY_RATES["quick" if quick else "full"] if exp == "capacity" else (None,)
        for knob, label, over in variants:
            for rate in rates:
                slug = re.sub(r"[^A-Za-z0-9_]+", "_", f"{knob}__{label}")  # a run-directory name
                name = f"{exp}/{slug}" + (f"/rps{rate:g}".replace(".", "_") if rate is not None else "")
                extra = [f"workload.rps={rate:g}"] if rate is not None else []
                p.jobs.append(Job(name, "compare", [*EXPERIMENTS[exp], *common, *over, *extra], p.out / "runs" / name))
                p.index[name] = (exp, knob, label, rate)
    return p


# ---- claims over the runs --------------------------------------------------------------------------
def _row(exp: str, claim, knob: str, label: str, value: float, how: str, name: str | None = None) -> dict:
    return {"experiment": exp, "claim": name or claim.name, "unit": claim.unit, "paper": claim.paper,
            "tag": claim.tag, "knob": knob, "value": label, "warmsim": value, "how": how}


def _capacity_rows(runs: pd.DataFrame) -> list[dict]:
    """Per (knob, value): the capacity claim's interval over its rate sweep, as two rows (low, high ends)."""
    from warmsim.experiments.claims import CLAIMS
    claim = next(c for c in CLAIMS if c.uses_sweep)
    rows = []
    for (knob, label), g in runs.groupby(["knob", "value"], sort=False):
        sweep = pd.concat([r.summary.assign(rps=float(r.rate)) for r in g.itertuples()], ignore_index=True)
        _, how, *interval = claim.measure(sweep)
        if not interval:
            continue
        lo, hi = interval[0]
        for end, v in (("low end", lo), ("high end", hi)):
            rows.append(_row("capacity", claim, knob, label, float(v), how, f"{claim.name}, {end}"))
    return rows


def claim_rows(p: Plan) -> pd.DataFrame:
    """One row per (experiment, claim, knob, value): warmsim's number on that run (capacity: on that
    value's rate sweep). Each experiment gives the claims it measures (``claims.CLAIM_EXPERIMENTS``)."""
    from warmsim.experiments.claims import CLAIM_EXPERIMENTS, CLAIMS
    from warmsim.experiments.outputs import MARKER
    runs = []
    for job in p.jobs:
        exp, knob, label, rate = p.index[job.name]
        if (job.run_dir / MARKER).is_file():
            runs.append({"experiment": exp, "knob": knob, "value": label, "rate": rate,
                         "summary": pd.read_csv(job.run_dir / "summary.csv")})
    df = pd.DataFrame(runs)
    rows: list[dict] = []
    if df.empty:
        return pd.DataFrame(rows)
    for r in df[df.experiment != "capacity"].itertuples():
        for c in CLAIMS:
            if c.uses_sweep or not c.name.startswith(CLAIM_EXPERIMENTS[r.experiment]):
                continue
            v, how, *_ = c.measure(r.summary)
            if v is not None and v == v:
                rows.append(_row(r.experiment, c, r.knob, r.value, float(v), how))
    cap = df[df.experiment == "capacity"]
    if not cap.empty:
        rows += _capacity_rows(cap)
    return pd.DataFrame(rows)


def ranges(rows: pd.DataFrame) -> pd.DataFrame:
    """Per claim: the default value, the range over every knob value, whether the paper's number is
    inside, and the knob that moves it most (largest spread of its values, the default included)."""
    out = []
    for (exp, claim), g in rows.groupby(["experiment", "claim"], sort=False):
        base = g[g.knob == "default"].warmsim
        default = float(base.iloc[0]) if len(base) else float("nan")
        vals = g.warmsim.astype(float)
        spread = {}
        for knob, kg in g[g.knob != "default"].groupby("knob", sort=False):
            v = [*kg.warmsim.astype(float), default]
            v = [x for x in v if x == x]
            spread[knob] = (max(v) - min(v)) if v else 0.0
        top = max(spread, key=spread.get) if spread and max(spread.values()) > 0 else "-"
        lo, hi, paper = float(vals.min()), float(vals.max()), float(g.paper.iloc[0])
        out.append({"experiment": exp, "claim": claim, "unit": g.unit.iloc[0], "tag": g.tag.iloc[0],
                    "paper": paper, "default": default, "low": lo, "high": hi,
                    "paper_inside": bool(lo <= paper <= hi), "moved_most_by": top,
                    "knobs_run": int(g[g.knob != "default"].knob.nunique())})
    return pd.DataFrame(out)


def _fmt(v: float, unit: str) -> str:
    if v != v:
        return "-"
    return f"{v:.2f}x" if unit == "x" else f"{v:.3f} s" if unit == "s" else f"{100 * v:.1f}%"


def ranges_markdown(r: pd.DataFrame, knobs: tuple[Knob, ...]) -> list[str]:
    """The claims table with ranges, and the knobs with why each is uncertain."""
    lines = ["## Paper claims as ranges (warmsim sensitivity)", "",
             "Each claim at warmsim's defaults and its range over one knob at a time (the knobs below: "
             "choices that are not measured or not sourced). [P]: the paper's text; [S]: a third-party "
             "summary, unverified.", "",
             "| claim | source | paper | warmsim (default) | range | paper inside? | moved most by |",
             "|---|---|---|---|---|---|---|"]
    for x in r.itertuples(index=False):
        lines.append(f"| {x.claim} | {x.tag} | {_fmt(x.paper, x.unit)} | {_fmt(x.default, x.unit)} | "
                     f"{_fmt(x.low, x.unit)} .. {_fmt(x.high, x.unit)} | {'yes' if x.paper_inside else 'no'} | "
                     f"{x.moved_most_by} |")
    lines += ["", "| knob | what | values (default first) | why it is uncertain |", "|---|---|---|---|"]
    for k in knobs:
        lines.append(f"| `{k.name}` | {k.what} | {', '.join(v for v, _ in k.values)} | {k.why} |")
    return lines + [""]


def run(p: Plan, *, parallel: int, reuse: bool, echo=print) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Run the plan's jobs, then write ``sensitivity.csv``, ``claims.md`` and the tornado figures."""
    from warmsim.experiments.jobs import failure_line, run_all
    from warmsim.figures.fig_sensitivity import draw_all

    p.out.mkdir(parents=True, exist_ok=True)
    echo(f"sensitivity: {len(p.jobs)} runs ({', '.join(p.experiments)}; {len(p.knobs)} knobs; "
         f"{p.duration_s:g} s of trace each) into {p.out / 'runs'}, {parallel} at a time")
    done = run_all(p.jobs, parallel=parallel, reuse=reuse, echo=echo)
    failed = [j for j in done if j.rc != 0]
    for j in failed:
        echo(f"sensitivity: run '{j.name}' failed: {failure_line(j)}")
    rows = claim_rows(p)
    if rows.empty:
        raise UserError("sensitivity: no run finished; nothing to report (see the logs under "
                        f"{p.out / 'runs'})")
    rows.to_csv(p.out / "sensitivity.csv", index=False)
    r = ranges(rows)
    (p.out / "claims.md").write_text("\n".join(ranges_markdown(r, p.knobs)))
    r.to_csv(p.out / "claims_ranges.csv", index=False)
    figs = draw_all(rows, p.out)
    echo(f"sensitivity: {len(figs)} tornado figure(s)")
    return rows, r, failed


def main(argv: list[str]) -> int:
    """``warmsim sensitivity [--quick] [--out DIR] [--jobs N] [--reuse] [--knobs a,b] [--experiments a,b]``."""
    import os

    from warmsim.sim.errors import UserArgumentParser

    ap = UserArgumentParser(prog="warmsim sensitivity",
                            description="Every paper claim as a range over the choices that are not measured "
                                        "or not sourced, one knob at a time (docs/warmserve.md, 'Claims as ranges').")
    ap.add_argument("--quick", action="store_true", help="10-minute traces and a coarse capacity sweep over 3 knobs "
                                                         "(a few minutes on 2 cores); default: 20 minutes, every knob")
    ap.add_argument("--out", type=Path, default=Path("sensitivity"), help="output directory (default ./sensitivity)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time (default: the CPU count)")
    ap.add_argument("--reuse", action="store_true", help="keep runs already complete with the same command line")
    ap.add_argument("--knobs", default=None, help=f"comma-separated subset of: {', '.join(k.name for k in KNOBS)}")
    ap.add_argument("--experiments", default=None, help=f"comma-separated subset of: {', '.join(EXPERIMENTS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds of trace per run (default 600 with --quick, else 1200: the paper's 20 minutes)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        raise UserError(f"sensitivity: --jobs must be at least 1, got {args.jobs}")
    if args.duration is not None and not 1 <= args.duration <= 86400:
        raise UserError(f"sensitivity: --duration must be 1 to 86400 seconds, got {args.duration:g}")
    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip()) if s else None  # noqa: E731
    p = plan(args.out, quick=args.quick, seed=args.seed, knobs=split(args.knobs), experiments=split(args.experiments),
             duration_s=args.duration)
    _, r, failed = run(p, parallel=args.jobs, reuse=args.reuse)
    print("\n".join(ranges_markdown(r, p.knobs)))
    print(f"sensitivity: wrote {p.out / 'sensitivity.csv'}, {p.out / 'claims.md'} and the tornado figures")
    return 1 if failed else 0
