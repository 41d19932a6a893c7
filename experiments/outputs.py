"""Write a run directory: summary.csv, requests.parquet, timeline.parquet, predictions.csv,
report.md and the resolved config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from experiments.runner import RunResult

#: Columns shown in the terminal table, with short headers.
TABLE = [("system", "system"), ("requests", "reqs"), ("completed", "done"), ("dropped", "drop"),
         ("ttft_p50_s", "ttft_p50"), ("ttft_p99_s", "ttft_p99"), ("ttft_mean_s", "ttft_mean"),
         ("tpot_mean_s", "tpot"), ("slo_attainment", "slo"), ("ttft_under_fast", "ttft<fast"),
         ("cold_starts", "cold"), ("prewarm_hits", "hits"), ("evictions", "evict"),
         ("mean_gpus_busy", "gpus"), ("gpu_hours", "gpu_h")]


def comparison_table(summary: pd.DataFrame) -> str:
    """The ``ALL`` rows of every system, then each model's p99 TTFT per system."""
    allrows = summary[summary["model"] == "ALL"][[c for c, _ in TABLE]].rename(columns=dict(TABLE))
    per_model = summary[summary["model"] != "ALL"].pivot(index="model", columns="system", values="ttft_p99_s")
    per_model = per_model[[s for s in summary["system"].unique() if s in per_model.columns]]
    fmt = lambda x: f"{x:.3f}" if isinstance(x, float) else str(x)  # noqa: E731
    unclosed = summary.loc[(summary["model"] == "ALL") & (summary["pred_windows"] == 0), "system"].tolist() \
        if "pred_windows" in summary else []
    notes = "".join(f"\nnote: {s}: no prediction window closed within the run (pred_windows = 0): its predictions "
                    "were never scored and every placement used window 0's prediction" for s in unclosed)
    return (allrows.to_string(index=False, formatters={c: fmt for c in allrows.columns}) +
            "\n\nP99 TTFT (s) per model:\n" + per_model.to_string(float_format=lambda x: f"{x:.3f}") + notes)


def write_run(outdir: Path, results: list[RunResult], cfg, setup, notes: list[str] = ()) -> pd.DataFrame:
    outdir.mkdir(parents=True, exist_ok=True)
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    summary.to_csv(outdir / "summary.csv", index=False)
    if cfg.output.requests:
        pd.concat([r.requests for r in results], ignore_index=True).to_parquet(outdir / "requests.parquet")
    if cfg.output.timeline:
        pd.concat([r.timeline for r in results], ignore_index=True).to_parquet(outdir / "timeline.parquet")
    pd.concat([r.predictions for r in results], ignore_index=True).to_csv(outdir / "predictions.csv", index=False)
    (outdir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    meta = {k: (v if isinstance(v, (int, float, str, bool, list, dict, type(None))) else str(v))
            for k, v in setup.workload.meta.items()}
    (outdir / "workload.json").write_text(json.dumps(meta, indent=2, default=str))
    write_report(outdir / "report.md", summary, results, setup, notes)
    return summary


def write_report(path: Path, summary: pd.DataFrame, results: list[RunResult], setup, notes=()) -> None:
    w = setup.workload
    lines = [
        "# warmsim comparison report", "",
        f"- Cost profile: `{setup.cost.name}` ({'measured on a GPU' if setup.cost.measured else 'NOT measured: analytic or constant'})",
        f"- Cluster: {setup.cluster.nodes} node(s) x {setup.cluster.gpus_per_node} GPUs, "
        f"{setup.cluster.gpu_hbm_bytes / 2**30:.0f} GiB HBM each",
        "- Models: " + ", ".join(f"{m.name} (tp{m.tp}, {m.weight_bytes / 1e9:.1f} GB)" for m in setup.models.values()),
        f"- Workload: {len(w)} requests over {w.duration_s:.0f} s; source: {w.meta.get('kind', w.meta.get('source', '?'))}",
        "- Wall time per system: " + ", ".join(f"{r.system} {r.wall_s:.1f} s" for r in results), "",
        "## Summary (all models)", "", "```", comparison_table(summary), "```", "",
        "Dropped requests count as the configured unfinished TTFT in the percentiles. `gpus` is the mean",
        "number of GPUs holding an instance; `gpu_h` the GPU-hours they add up to.", "",
    ]
    drops = pd.concat([r.requests[r.requests["status"] == "dropped"] for r in results])
    if len(drops):
        lines += ["## Dropped requests by reason", "", "```",
                  drops.groupby(["system", "drop_reason"], observed=True).size().to_string(), "```", ""]
    if notes:
        lines += ["## Cost-model notes", ""] + [f"- {n}" for n in notes] + [""]
    path.write_text("\n".join(lines))

