"""The experiments behind the figures: the job list (:func:`plan`), run by :mod:`warmsim.experiments.jobs`.

Each job is one ``warmsim compare`` or ``warmsim run`` writing a run directory under ``<out>/runs/``.
"""

from __future__ import annotations

from pathlib import Path

from warmsim.experiments.jobs import Job


def plan(out: Path, *, workload: str, headline_rps: float, rates: list[float], main_systems: list[str],
         ablation_systems: list[str], ablation_rps: float, duration_s: float | None, seed: int,
         need: set[str]) -> list[Job]:
    """The jobs for the experiment sets in ``need`` (``headline``, ``load``, ``ablation``).

    headline: one ``warmsim compare`` of ``main_systems`` at ``headline_rps``.
    load: one ``warmsim run`` per (system, rate) for the other rates (the headline run is the sweep's
    point at ``headline_rps``). ablation: one ``warmsim run`` per ablation system (and WarmServe) at
    ``ablation_rps``, except those the headline or load runs already hold at that rate.
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
    if "ablation" in need:
        have = {(s, headline_rps) for s in main_systems} if need & {"headline", "load"} else set()
        if "load" in need:
            have |= {(s, r) for s in main_systems for r in rates}
        for s in dict.fromkeys(["warmserve", *ablation_systems]):
            if (s, ablation_rps) in have:
                continue
            jobs.append(Job(f"ablation {s}", "run", common + [f"workload.rps={ablation_rps:g}", f"system={s}"],
                            runs / "ablation" / s))
    # longest first (cost grows with the rate) so that parallel workers finish together
    return sorted(jobs, key=lambda j: -_rate(j))


def _rate(job: Job) -> float:
    rate = next((float(o.split("=", 1)[1]) for o in job.overrides if o.startswith("workload.rps=")), 0.0)
    return rate * (4 if job.command == "compare" else 1)


