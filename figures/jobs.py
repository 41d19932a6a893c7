"""The experiments behind the figures: the job list (:func:`plan`), run by :mod:`warmsim.experiments.jobs`.

Each job is one ``warmsim compare`` or ``warmsim run`` writing a run directory under ``<out>/runs/``.
"""

from __future__ import annotations

from pathlib import Path

from warmsim.experiments.jobs import Job


def plan(out: Path, *, workload: str, headline_rps: float, rates: list[float], main_systems: list[str],
         ablation_systems: list[str], ablation_rps: float, duration_s: float | None, seed: int,
         need: set[str], bursty: tuple[float, float] | None = None,
         capacity: tuple[list[float], list[str]] | None = None) -> list[Job]:
    """The jobs for the experiment sets in ``need`` (``headline``, ``load``, ``ablation``,
    ``ablation_bursty``).

    headline: one ``warmsim compare`` of ``main_systems`` at ``headline_rps``.
    load: one ``warmsim run`` per (system, rate) for the other rates (the headline run is the sweep's
    point at ``headline_rps``). ablation: one ``warmsim run`` per ablation system (and WarmServe) at
    ``ablation_rps``, except those the headline or load runs already hold at that rate.
    ablation_bursty: the same systems with bursty arrivals, ``bursty = (burstiness_cv, rps)``.
    ``capacity = (rates, systems)`` adds, with ``load``, a run of each of those systems at each of those
    rates that the load sweep lacks (the finer grid around WarmServe's and MuxServe's knees).
    """
    runs = out / "runs"
    common = [f"workload={workload}", f"seed={seed}", "progress=false"]
    if duration_s is not None:
        common.append(f"workload.duration_s={duration_s:g}")
    jobs: list[Job] = []
    if need & {"headline", "load"}:
        jobs.append(Job("headline", "compare", common + [f"workload.rps={headline_rps:g}",
                                                         f"systems=[{','.join(main_systems)}]"], runs / "headline"))
    if "load" in need:
        for r in rates:
            if r == headline_rps:
                continue
            for s in main_systems:
                jobs.append(Job(f"load rps={r:g} {s}", "run", common + [f"workload.rps={r:g}", f"system={s}"],
                                runs / "load" / f"rps{r:g}" / s))
    if "load" in need and capacity is not None:
        cap_rates, cap_systems = capacity
        for r in cap_rates:
            for s in cap_systems:
                if r == headline_rps or r in rates:
                    continue
                jobs.append(Job(f"load rps={r:g} {s}", "run", common + [f"workload.rps={r:g}", f"system={s}"],
                                runs / "load" / f"rps{r:g}" / s))
    if "ablation" in need:
        have = {(s, headline_rps) for s in main_systems} if need & {"headline", "load"} else set()
        if "load" in need:
            have |= {(s, r) for s in main_systems for r in rates}
        for s in dict.fromkeys(["warmserve", *ablation_systems]):
            if (s, ablation_rps) in have:
                continue
            jobs.append(Job(f"ablation {s}", "run", common + [f"workload.rps={ablation_rps:g}", f"system={s}"],
                            runs / "ablation" / s))
    if "ablation_bursty" in need and bursty is not None:
        cv, rps = bursty
        for s in dict.fromkeys(["warmserve", *ablation_systems]):
            jobs.append(Job(f"ablation bursty {s}", "run", common + [f"workload.rps={rps:g}",
                                                                     f"workload.burstiness_cv={cv:g}", f"system={s}"],
                            runs / "ablation_bursty" / s))
    # longest first (cost grows with the rate) so that parallel workers finish together
    return sorted(jobs, key=lambda j: -_rate(j))


def _rate(job: Job) -> float:
    rate = next((float(o.split("=", 1)[1]) for o in job.overrides if o.startswith("workload.rps=")), 0.0)
    return rate * (4 if job.command == "compare" else 1)


