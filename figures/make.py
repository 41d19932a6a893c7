"""``warmsim figures``: run the experiments behind the figures (or reuse existing run directories)
and draw every figure from the result tables.

    warmsim figures [--out DIR] [--results DIR] [--quick] [--only NAME,...] [options]

Without ``--results`` the experiments run as ``warmsim compare`` / ``warmsim run`` subprocesses
writing to ``<out>/runs/``; the figures then read those directories like any other results.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from warmsim.experiments import jobs as runner
from warmsim.experiments.outputs import atomic_write
from warmsim.figures import jobs as jobmod
from warmsim.figures import tables
from warmsim.sim.errors import UserArgumentParser, UserError, writable_dir

#: Figure names in drawing order, with the experiment sets each needs.
FIGURES: dict[str, set[str]] = {
    "tail_ttft": {"headline"}, "ttft_cdf": {"headline"}, "max_rps": {"load"}, "ablation": {"ablation", "ablation_bursty"},
    "prediction": {"headline"}, "memory_timeline": {"headline"}, "gpu_cost": {"load"},
}
MAIN_SYSTEMS = "static,sllm,muxserve,warmserve"
ABLATION_SYSTEMS = ("warmserve_disable_prewarm,warmserve_default_mode,warmserve_no_placement,warmserve_no_kv_reserve,warmserve_oracle,"
                    "warmserve_window3,warmserve_window40,warmserve_free_malloc")
FULL_RATES = "5,10,15,20,30,40,60,80"
QUICK_RATES = "10,40,80,120"
QUICK_DURATION_S = 300.0


def experiment_overlay(name: str) -> dict:
    """An experiment overlay (``experiments/conf/experiment/<name>.yaml``) as a dict: the figure defaults
    that must match ``warmsim compare experiment=<name>``."""
    import yaml

    from warmsim.experiments.builder import CONF_DIR
    return yaml.safe_load((CONF_DIR / "experiment" / f"{name}.yaml").read_text()) or {}


def experiment_workload(name: str) -> dict:
    """The ``workload`` node of an experiment overlay."""
    return experiment_overlay(name).get("workload") or {}


def capacity_grid() -> tuple[str, str]:
    """The rates and systems ``experiment=paper_capacity`` sweeps (its hydra sweeper params)."""
    params = ((experiment_overlay("paper_capacity").get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return str(params.get("workload.rps", "")), str(params.get("system", ""))


def _csv(kind):
    def parse(text: str):
        try:
            return [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got '{text}'") from None
    return parse


def parser() -> argparse.ArgumentParser:
    """The command-line options (each with its default in the help)."""
    p = UserArgumentParser(prog="warmsim figures", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("figures/out"), help="where PNGs, numbers.json and runs/ go (default: figures/out)")
    p.add_argument("--results", type=Path, default=None,
                   help="only draw, from the run directories (folders with summary.csv) below this one")
    p.add_argument("--quick", action="store_true",
                   help=f"short experiments: workload.duration_s={QUICK_DURATION_S:g}, rates {QUICK_RATES}")
    p.add_argument("--only", type=_csv(str), default=None, help=f"comma-separated subset of: {', '.join(FIGURES)}")
    p.add_argument("--workload", default="warmserve_conv", help="workload config (experiments/conf/workload/; default: warmserve_conv)")
    p.add_argument("--rps", type=float, default=15.0, help="request rate (workload.rps, req/s) of the headline comparison (default: 15, the paper's headline point)")
    p.add_argument("--rates", type=_csv(float), default=None,
                   help=f"request rates of the load sweep (default {FULL_RATES}; --quick: {QUICK_RATES})")
    p.add_argument("--duration-s", type=float, default=None,
                   help=f"workload.duration_s (default: the workload's own, 1200 s; --quick: {QUICK_DURATION_S:g})")
    p.add_argument("--systems", type=_csv(str), default=MAIN_SYSTEMS, help=f"systems compared (default: {MAIN_SYSTEMS})")
    p.add_argument("--ablation-systems", type=_csv(str), default=ABLATION_SYSTEMS,
                   help="WarmServe variants of the ablation figure (WarmServe itself is always included; default: "
                        f"{ABLATION_SYSTEMS})")
    plain, bursty = experiment_workload("paper_ablation"), experiment_workload("paper_ablation_bursty")
    p.add_argument("--ablation-rps", type=float, default=float(plain["rps"]),
                   help=f"request rate of the ablation (default: {plain['rps']:g}, experiment=paper_ablation: starts "
                        "are frequent and WarmServe still meets its SLO)")
    p.add_argument("--bursty-cv", type=float, default=float(bursty["burstiness_cv"]),
                   help=f"workload.burstiness_cv of the second ablation regime (default: {bursty['burstiness_cv']:g}, "
                        "experiment=paper_ablation_bursty); a negative value leaves that regime out")
    p.add_argument("--bursty-rps", type=float, default=float(bursty["rps"]),
                   help=f"request rate of the bursty ablation regime (default: {bursty['rps']:g}, "
                        "experiment=paper_ablation_bursty)")
    cap_rates, cap_systems = capacity_grid()
    p.add_argument("--capacity-rates", type=_csv(float), default=cap_rates,
                   help=f"extra rates of the load sweep for --capacity-systems (default: experiment=paper_capacity's, "
                        f"{cap_rates}; none with --quick or --rates)")
    p.add_argument("--capacity-systems", type=_csv(str), default=cap_systems,
                   help=f"systems swept at --capacity-rates (default: {cap_systems})")
    p.add_argument("--criterion", choices=["slo", "p99"], default="slo",
                   help="when a rate counts as served in max_rps: SLO attainment or P99 TTFT of all models "
                        "(default: slo)")
    p.add_argument("--slo-min", type=float, default=0.99, help="min SLO attainment for --criterion slo (default: 0.99)")
    p.add_argument("--p99-limit-s", type=float, default=1.0, help="max P99 TTFT in seconds for --criterion p99 (default: 1.0)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--jobs", type=int, default=2, help="experiments run at once, one core each (default: 2)")
    p.add_argument("--reuse", action="store_true",
                   help="keep a run directory under <out>/runs/ that finished the identical command before")
    return p


@dataclass
class Context:
    """What the figure drawers get: the comparable runs, the options and the failed systems."""

    runs: list
    args: argparse.Namespace
    failed: list[str] = field(default_factory=list)
    #: Runs of the same setup with re-timed arrivals (``workload.burstiness_cv``): only the ablation
    #: figure reads them; every other figure uses :attr:`runs`.
    bursty: list = field(default_factory=list)

    @property
    def suffix(self) -> str:
        r = (self.runs or self.bursty)[0]
        dur = f", {r.duration_s / 60:g} min" if r.duration_s == r.duration_s else ""
        seeds = sorted({x.seed for x in self.runs + self.bursty})
        seed = f"seed {r.seed}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}: sweeps averaged"
        return f"\n({r.workload}{dur}, {seed})"

    @property
    def one_seed(self) -> list:
        """Runs of one seed (``--seed`` when present, else the lowest) for the single-run figures;
        sweeps use every seed (mean and 95% CI)."""
        return [r for r in self.runs if r.seed == self.seed]

    @property
    def seed(self) -> int | None:
        """The seed of the single-run figures."""
        seeds = sorted({r.seed for r in self.runs + self.bursty})
        return self.args.seed if getattr(self.args, "seed", None) in seeds else (seeds[0] if seeds else None)

    def at(self, rps: float):
        runs = self.one_seed
        return tables.runs_at(runs, rps if any(r.rps == rps for r in runs) or
                              any(r.rps == r.rps for r in runs) else None)


def _present(runs, systems):
    have = {s for r in runs for s in r.systems}
    return [s for s in systems if s in have]


def _headline(ctx: Context):
    runs = ctx.at(ctx.args.rps)
    systems = _present(runs, ctx.args.systems)
    if not systems:
        raise _Skip(f"no run of {', '.join(ctx.args.systems)} at rate {ctx.args.rps:g}")
    return runs, systems


class _Skip(Exception):
    """A figure cannot be drawn from the available runs (message says why)."""


def draw_tail_ttft(ctx: Context, out: Path) -> dict:
    from warmsim.figures import fig_tail_ttft
    runs, systems = _headline(ctx)
    return fig_tail_ttft.draw(tables.gather(runs, "summary", systems), out,
                              title_extra=f" at {ctx.args.rps:g} req/s" + ctx.suffix)


def draw_ttft_cdf(ctx: Context, out: Path) -> dict:
    from warmsim.figures import fig_ttft_cdf
    runs, systems = _headline(ctx)
    r0 = tables.provider(runs, systems[0])
    slo = (r0.cfg.get("slo") or {}).get("ttft_s")
    return fig_ttft_cdf.draw(tables.gather(runs, "requests", systems), out, fast_ttft_s=r0.fast_ttft_s,
                             slo_ttft_s=slo, title_extra=f" at {ctx.args.rps:g} req/s" + ctx.suffix)


def draw_max_rps(ctx: Context, out: Path) -> dict:
    from warmsim.figures import fig_max_rps
    sweep = tables.sweep_summary(ctx.runs, _present(ctx.runs, ctx.args.systems))
    if sweep.empty or sweep["rps"].nunique() < 2:
        raise _Skip("needs runs at two or more request rates (workload.rps)")
    slo = (ctx.runs[0].cfg.get("slo") or {}).get("ttft_s")
    alphas = {(r.cfg.get("workload") or {}).get("alpha") for r in ctx.runs}
    alpha = float(next(iter(alphas))) if len(alphas) == 1 and None not in alphas else None
    return fig_max_rps.draw(sweep, out, criterion=ctx.args.criterion, p99_limit_s=ctx.args.p99_limit_s,
                            slo_min=ctx.args.slo_min, slo_ttft_s=slo, alpha=alpha,
                            title_extra=ctx.suffix.replace("\n", " "))


def draw_ablation(ctx: Context, out: Path) -> dict:
    from warmsim.figures import fig_ablation
    rps = ctx.args.ablation_rps if ctx.args.ablation_rps is not None else ctx.args.rps
    systems = ["warmserve"] + [s for s in ctx.args.ablation_systems if s != "warmserve"]
    regimes = {}
    try:
        runs = ctx.at(rps)
    except UserError:  # no run of the trace's arrivals at that rate: the bursty regime may still draw
        runs = []
    present = _present(runs, systems)
    if any(s != "warmserve" for s in present):
        regimes[f"trace arrivals, {rps:g} req/s"] = tables.gather(runs, "summary", present)
    cv, brps = ctx.args.bursty_cv, ctx.args.bursty_rps
    bursty = [r for r in ctx.bursty if r.burstiness_cv == cv and r.rps == brps and r.seed == ctx.seed]
    bpresent = _present(bursty, systems)
    if any(s != "warmserve" for s in bpresent):
        regimes[f"bursty CV {cv:g}, {brps:g} req/s"] = tables.gather(bursty, "summary", bpresent)
    if not regimes:
        raise _Skip(f"no ablation run ({', '.join(systems[1:])}) at rate {rps:g}, nor with burstiness_cv={cv:g} "
                    f"at {brps:g} req/s")
    fast = (runs or bursty)[0].fast_ttft_s
    return fig_ablation.draw(regimes, out, systems=systems, fast_ttft_s=fast,
                             failed=[s for s in ctx.failed if s in systems], title_extra=ctx.suffix)


def _window_s(run, system: str):
    sc = run.cfg.get("system") or {}
    if sc.get("name") == system:
        return ((sc.get("predictor") or {}).get("window_s"))
    try:
        from warmsim.experiments.builder import system_config
        return float(system_config(system).predictor.window_s)
    except Exception:  # noqa: BLE001 - an unknown window only changes the x label
        return None


def draw_prediction(ctx: Context, out: Path) -> dict:
    from warmsim.figures import fig_prediction
    runs = ctx.at(ctx.args.rps)
    run = tables.provider(runs, "warmserve")
    if run is None:
        raise _Skip(f"no warmserve run at rate {ctx.args.rps:g}")
    pred = run.table("predictions")
    if pred.empty or "warmserve" not in set(pred["system"]):
        raise _Skip(f"{run.path}/predictions.csv has no warmserve rows")
    return fig_prediction.draw(pred, run.table("summary"), out, system="warmserve",
                               window_s=_window_s(run, "warmserve"), title_extra=f" at {ctx.args.rps:g} req/s")


def draw_memory_timeline(ctx: Context, out: Path) -> dict:
    from warmsim.experiments.timeline import rate_label
    from warmsim.figures import fig_memory_timeline
    runs = ctx.at(ctx.args.rps)
    run = tables.provider(runs, "warmserve") or (runs[0] if runs else None)  # any system draws; WarmServe first
    if run is None:
        raise _Skip(f"no run at rate {ctx.args.rps:g}")
    system = "warmserve" if "warmserve" in run.systems else run.systems[0]
    cl = run.cfg.get("cluster") or {}
    n = int(cl["nodes"]) * int(cl["gpus_per_node"]) if "nodes" in cl and "gpus_per_node" in cl else None
    rate = rate_label(run.path)  # the run's own rate (its config), not the --rps default
    from warmsim.experiments.timeline import read_faults
    return fig_memory_timeline.draw(run.table("timeline"), out, system=system,
                                    gpus_per_node=run.gpus_per_node, n_gpus=n,
                                    title_extra=(f" at {rate}" if rate else "") + ctx.suffix.replace("\n", " "),
                                    faults=read_faults(run.path))


def draw_gpu_cost(ctx: Context, out: Path) -> dict:
    from warmsim.figures import fig_gpu_cost
    systems = _present(ctx.runs, ctx.args.systems)
    sweep = tables.sweep_summary(ctx.runs, systems)
    if sweep.empty:
        raise _Skip("no run of the compared systems")
    return fig_gpu_cost.draw(sweep, out, highlight_rps=ctx.args.rps, title_extra=ctx.suffix.replace("\n", " "))


DRAWERS = {"tail_ttft": draw_tail_ttft, "ttft_cdf": draw_ttft_cdf, "max_rps": draw_max_rps,
           "ablation": draw_ablation, "prediction": draw_prediction, "memory_timeline": draw_memory_timeline,
           "gpu_cost": draw_gpu_cost}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def provenance() -> dict:
    """The code the experiments ran with: git commit and whether tracked files had local changes."""
    import subprocess
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head or None, "tracked_files_modified": bool(dirty)}


def run_experiments(args, names: list[str], out: Path) -> tuple[list, list[str], float]:
    """Run the experiments ``names`` need; returns (jobs, failed systems, wall seconds)."""
    need = set().union(*(FIGURES[n] for n in names))
    rates = args.rates or _csv(float)(QUICK_RATES if args.quick else FULL_RATES)
    duration = args.duration_s if args.duration_s is not None else (QUICK_DURATION_S if args.quick else None)
    ab_rps = args.ablation_rps if args.ablation_rps is not None else args.rps
    todo = jobmod.plan(out, workload=args.workload, headline_rps=args.rps, rates=rates, main_systems=args.systems,
                       ablation_systems=args.ablation_systems, ablation_rps=ab_rps, duration_s=duration,
                       bursty=(args.bursty_cv, args.bursty_rps) if args.bursty_cv >= 0 else None,
                       capacity=None if args.quick or args.rates else (args.capacity_rates, args.capacity_systems),
                       seed=args.seed, need=need)
    print(f"figures: running {len(todo)} experiment(s) ({args.jobs} at a time) into {out / 'runs'}")
    t0 = time.perf_counter()
    done = runner.run_all(todo, parallel=args.jobs, reuse=args.reuse)
    wall = time.perf_counter() - t0
    failed = []
    for j in done:
        if j.rc != 0:
            print(f"figures: experiment '{j.name}' failed: {runner.failure_line(j)}")
            failed += [o.split("=", 1)[1] for o in j.overrides if o.startswith("system=")]
    print(f"figures: experiments took {wall:.0f} s")
    return done, failed, wall


def _writable(out: Path) -> Path:
    """``--out`` created if missing; a file in the way or a folder that cannot be written is a
    one-line error before any experiment runs."""
    return writable_dir(out, f"--out {out}")


def main(argv: list[str]) -> int:
    """Entry point of ``warmsim figures``; returns the exit status (1 if an experiment failed)."""
    args = parser().parse_args(argv)
    names = list(FIGURES) if not args.only else args.only
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise UserError(f"--only: unknown figure(s) {', '.join(unknown)} (known: {', '.join(FIGURES)})")
    if args.jobs < 1:
        raise UserError("--jobs: must be at least 1")
    from warmsim.sim.knobs import Knob
    for flag_, v, knob in (
            ("--rps", args.rps, Knob("float", 0, 1e6, lo_open=True, help="req/s")),
            ("--ablation-rps", args.ablation_rps, Knob("float", 0, 1e6, lo_open=True, null=True, help="req/s")),
            ("--duration-s", args.duration_s, Knob("float", 0, 366 * 86400.0, lo_open=True, null=True)),
            ("--slo-min", args.slo_min, Knob("float", 0, 1, help="a share of requests")),
            ("--p99-limit-s", args.p99_limit_s, Knob("float", 0, 1e6, lo_open=True, help="seconds")),
            ("--seed", args.seed, Knob("int", 0, 2**32 - 1)),
            ("--jobs", args.jobs, Knob("int", 1, 1024))):
        knob.check(flag_, v, label="")
    for r in args.rates or []:
        Knob("float", 0, 1e6, lo_open=True, help="req/s").check("--rates", r, label="")
    out = _writable(args.out.resolve())
    failed, exp_wall, done = [], 0.0, []
    if args.results is None:
        done, failed, exp_wall = run_experiments(args, names, out)
        root = out / "runs"
    else:
        root = args.results
    runs = tables.main_group(tables.find_runs(root))
    ctx = Context(runs=[r for r in runs if not r.bursty], args=args, failed=failed,
                  bursty=[r for r in runs if r.bursty])
    numbers, timings, drawn, skipped = {}, {"experiments_s": round(exp_wall, 1)}, [], []
    for n in names:
        t0 = time.perf_counter()
        path = out / f"{n}.png"
        try:
            numbers[n] = DRAWERS[n](ctx, path)
        except (_Skip, UserError) as e:
            print(f"figures: {n}: skipped: {e}")
            skipped.append(f"{n}: {e}")
            continue
        except KeyError as e:  # a result table without a column this figure reads
            print(f"figures: {n}: skipped: a result table lacks column {e}")
            skipped.append(f"{n}: a result table lacks column {e}")
            continue
        timings[f"draw_{n}_s"] = round(time.perf_counter() - t0, 2)
        drawn.append(n)
        print(f"figures: {n}: {path}")
    if not drawn:
        raise UserError(f"no figure could be drawn from the runs under {root}: {'; '.join(skipped)}")
    if args.results is None:
        timings["code"] = provenance()
        timings["jobs"] = {j.name: round(j.wall_s, 1) for j in done if not j.reused}
    atomic_write(out / "numbers.json", lambda p: p.write_text(json.dumps(_jsonable(numbers), indent=1)))
    atomic_write(out / "timings.json", lambda p: p.write_text(json.dumps(timings, indent=1)))
    if failed:
        print(f"figures: {len(failed)} experiment(s) failed ({', '.join(failed)}); their figures lack them")
        return 1
    return 0
