"""Write a run directory: summary.csv, requests.parquet, timeline.parquet, predictions.csv,
report.md and the resolved config."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml
from omegaconf import OmegaConf

if TYPE_CHECKING:  # only for annotations: keeps `warmsim report` / `figures` off the simulator's imports
    from warmsim.experiments.results import RunResult

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


#: The file that marks a run directory complete; written last, after every other file is in place.
MARKER = "COMPLETE"
#: Present while a run directory's files are being written (removed once the marker exists).
PARTIAL = "INCOMPLETE"


def atomic_write(path: Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary name in ``path``'s folder, then rename it to ``path``: an
    interrupted write leaves the old file or none, never a half-written one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_state(d: Path) -> str:
    """``complete`` (the marker exists), ``incomplete`` (written by warmsim but without the marker:
    interrupted, failed or still running) or ``external`` (tables put together by other means: no
    marker, no hydra record, no partial-write flag)."""
    d = Path(d)
    if (d / MARKER).is_file():
        return "complete"
    if (d / PARTIAL).exists() or (d / ".hydra").is_dir():
        return "incomplete"
    return "external"


def _safe(name: str) -> str:
    """A system name as a file name (no separators)."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in str(name)) or "system"


def read_config(run_dir: Path) -> dict:
    """The resolved ``config.yaml`` a run directory holds (as :func:`write_run` wrote it); ``{}`` when
    there is none."""
    f = Path(run_dir) / "config.yaml"
    if not f.is_file():
        return {}
    try:
        cfg = yaml.safe_load(f.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        from warmsim.sim.errors import UserError
        raise UserError(f"{f}: not a readable config ({' '.join(str(e).split())[:200]})") from None
    return cfg if isinstance(cfg, dict) else {}


def begin_run(outdir: Path) -> None:
    """Mark ``outdir`` as being produced: drop an earlier run's marker, so that a run killed before
    its results are written never leaves a directory that looks complete."""
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / MARKER).unlink(missing_ok=True)
    (outdir / PARTIAL).write_text("results are being written; a directory without COMPLETE is not a result\n")


def write_run(outdir: Path, results: list[RunResult], cfg, setup, notes: Sequence[str] = ()) -> pd.DataFrame:
    """Write the run directory (marked by :func:`begin_run` before the runs started). Each file goes
    under a temporary name and is renamed into place; :data:`MARKER` (the files and their SHA-256)
    comes last, so a directory holding it is whole."""
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    files: list[tuple[str, object]] = [("summary.csv", lambda p: summary.to_csv(p, index=False))]
    if cfg.output.requests:
        req = pd.concat([r.requests for r in results], ignore_index=True)
        files.append(("requests.parquet", lambda p: req.to_parquet(p)))
    if cfg.output.timeline:
        tl = pd.concat([r.timeline for r in results], ignore_index=True)
        files.append(("timeline.parquet", lambda p: tl.to_parquet(p)))
    if cfg.output.get("steps", False):
        steps = pd.concat([r.steps for r in results if r.steps is not None], ignore_index=True)
        files.append(("steps.parquet", lambda p: steps.to_parquet(p)))
    preds = pd.concat([r.predictions for r in results], ignore_index=True)
    files.append(("predictions.csv", lambda p: preds.to_csv(p, index=False)))
    if any(r.faults for r in results):  # faults.csv: one row per fault and system (sim/faults.py FAULT_COLUMNS)
        from warmsim.sim.faults import faults_table
        faults = faults_table((r.system, r.faults) for r in results)
        files.append(("faults.csv", lambda p: faults.to_csv(p, index=False)))
    files.append(("config.yaml", lambda p: p.write_text(OmegaConf.to_yaml(cfg, resolve=True))))
    meta = {k: (v if isinstance(v, (int, float, str, bool, list, dict, type(None))) else str(v))
            for k, v in setup.workload.meta.items()}
    meta["changes"] = setup.workload_notes  # what the builder changed, as printed
    files.append(("workload.json", lambda p: p.write_text(json.dumps(meta, indent=2, default=str))))
    files.append(("report.md", lambda p: write_report(p, summary, results, setup, notes)))
    for r in results:  # each system's resolved config (after overrides.<system>.*)
        if r.config is not None:
            files.append((f"systems/{_safe(r.system)}.yaml",
                          lambda p, c=r.config: p.write_text(OmegaConf.to_yaml(OmegaConf.create(c)))))
    (outdir / "systems").mkdir(exist_ok=True)
    for name, write in files:
        atomic_write(outdir / name, write)
    mark = {"files": {name: _sha256(outdir / name) for name, _ in files}}
    atomic_write(outdir / MARKER, lambda p: p.write_text(json.dumps(mark, indent=1, sort_keys=True) + "\n"))
    (outdir / PARTIAL).unlink(missing_ok=True)
    return summary


#: Token-cap counters of ``Workload.meta["token_caps"]``: what each says, and the knob behind it.
_CAPS = {"prompt_capped": ("prompts", "capped at {} tokens", "max_prompt_tokens"),
         "prompt_raised_to_1": ("prompts", "raised to 1 token", None),
         "prompt_offset_to_1": ("prompts", "of at most {} tokens sent as 1 token", "prompt_offset_tokens"),
         "output_raised_to_min": ("outputs", "raised to {} tokens", "min_output_tokens"),
         "output_capped": ("outputs", "capped at {} tokens", "max_output_tokens")}


def workload_notes(workload, models=None) -> list[str]:
    """What building the workload changed, one line each: token caps and raised minimums (count and
    share), requests that will be dropped for exceeding their model's context length, dropped rows,
    unused trace columns and window changes (the builder's ``meta["notes"]``)."""
    import numpy as np
    meta = workload.meta
    n = len(workload)
    knobs = meta.get("knobs") or {}
    out = []
    for key, count in (meta.get("token_caps") or {}).items():
        if not count or key not in _CAPS:
            continue
        what, how, knob = _CAPS[key]
        how = how.format(knobs.get(knob, "?")) if knob else how
        out.append(f"{count} of {n} {what} ({100 * count / max(n, 1):.1f}%) {how}"
                   + (f" (workload.{knob})" if knob else ""))
    if meta.get("dropped_rows"):
        out.append(f"{meta['dropped_rows']} trace request(s) not in the workload (see workload.json)")
    out += [str(x) for x in meta.get("notes") or []]
    if models and n:
        total = workload.prompt_tokens.astype(np.int64) + workload.output_tokens.astype(np.int64)
        for j, name in enumerate(workload.models):
            m = models.get(name)
            if m is None:
                continue
            sel = workload.model == j
            over = int((total[sel] > m.shape.max_model_len).sum())
            if over:
                out.append(f"{over} of {int(sel.sum())} requests of {name} ({100 * over / max(int(sel.sum()), 1):.1f}%) "
                           f"exceed its context length ({m.shape.max_model_len} tokens, prompt + output) and will "
                           "be dropped (exceeds_max_model_len); workload.max_prompt_tokens caps prompts")
    return out


def workload_lines(setup) -> list[str]:
    """The run's first lines: the workload's size and source, then :func:`workload_notes`."""
    w = setup.workload
    src = w.meta.get("kind", "?") + (f", trace {w.meta['trace']}" if w.meta.get("trace") else "")
    return [f"workload: {len(w)} requests over {w.duration_s:.0f} s ({src})"] + [
        f"  note: {x}" for x in setup.workload_notes]


def _cost_kind(cost) -> str:
    """Whether the cost model's numbers were measured, and by whom (a profile measured outside the
    harness says so, with how many of its tables are analytic)."""
    from warmsim.sim.costprofile.profile import external_note
    meta = getattr(getattr(cost, "fitted", None), "meta", None)
    note = external_note(meta) if isinstance(meta, dict) else None
    return note or ("measured on a GPU" if cost.measured else "NOT measured: analytic or constant")


def _report_header(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    w = setup.workload
    return [
        "# warmsim comparison report", "",
        f"- Cost profile: `{setup.cost.name}` ({_cost_kind(setup.cost)})",
        f"- Cluster: {setup.cluster.nodes} node(s) x {setup.cluster.gpus_per_node} GPUs, "
        f"{setup.cluster.gpu_hbm_bytes / 2**30:.0f} GiB HBM each",
        "- Models: " + ", ".join(f"{m.name} (tp{m.tp}, {m.weight_bytes / 1e9:.1f} GB)" for m in setup.models.values()),
        f"- Workload: {len(w)} requests over {w.duration_s:.0f} s; source: {w.meta.get('kind', w.meta.get('source', '?'))}",
        "- Wall time per system: " + ", ".join(f"{r.system} {r.wall_s:.1f} s" for r in results), "",
    ]


def _report_workload(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    lines = setup.workload_notes
    if not lines:
        return []
    return ["## What the workload builder changed", ""] + [f"- {x}" for x in lines] + [""]


def _report_summary(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    return ["## Summary (all models)", "", "```", comparison_table(summary), "```", "",
            "Dropped requests count as the configured unfinished TTFT in the percentiles. `gpus` is the mean",
            "number of GPUs holding an instance; `gpu_h` the GPU-hours they add up to.", ""]


#: Columns of report.md's "Instance starts" table, with short headers.
STARTS = [("system", "system"), ("instance_starts", "activations"), ("cold_starts", "cold"),
          ("prewarm_hits", "hits"), ("prewarm_hits_loading", "hits_loading"), ("start_hit_ratio", "hit_ratio"),
          ("start_requests", "start_reqs"), ("start_ttft_p99_s", "start_p99"), ("start_ttft_fast", "start<fast")]


def starts_table(summary: pd.DataFrame) -> str:
    """The ``ALL`` rows' instance-start columns (empty cells: no activation or no such request)."""
    allrows = summary[summary["model"] == "ALL"][[c for c, _ in STARTS]].rename(columns=dict(STARTS))

    def fmt(x) -> str:
        if isinstance(x, str):
            return x
        return "-" if x != x else f"{x:.3f}" if isinstance(x, float) else str(x)
    return allrows.to_string(index=False, na_rep="-", formatters={c: fmt for c in allrows.columns})


def _report_starts(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    if "start_hit_ratio" not in summary:
        return []
    return ["## Instance starts (all models)", "", "```", starts_table(summary), "```", "",
            "`activations`: instance starts after t = 0 (`cold` from a weight source, `hits` on a ready prewarmed",
            "replica, `hits_loading` on one still loading); `hit_ratio` = (hits + hits_loading) / activations.",
            "`start_reqs`: requests routed to an instance before it was active (start kind not `warm`);",
            "`start_p99` and `start<fast` their P99 TTFT (s) and share under `metrics.fast_ttft_s`.",
            "`-`: no activation, or no such request.", ""]


def _report_drops(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    drops = pd.concat([r.requests[r.requests["status"] == "dropped"] for r in results])
    if not len(drops):
        return []
    return ["## Dropped requests by reason", "", "```",
            drops.groupby(["system", "drop_reason"], observed=True).size().to_string(), "```", ""]


def _report_notes(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    return ["## Cost-model notes", ""] + [f"- {n}" for n in notes] + [""] if notes else []


def _report_systems(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    """Which GPUs each system could use, and what each placed at time 0 (MuxServe's meshes)."""
    total = setup.cluster.nodes * setup.cluster.gpus_per_node
    lines = ["## Systems", ""]
    for r in results:
        seen = f"{r.gpus_visible} of {total} GPUs" if r.gpus_visible else f"{total} GPUs"
        extra = " (as the artifact ran it: one node)" if r.gpus_visible and r.gpus_visible < total else ""
        lines.append(f"- `{r.system}`: {seen}{extra}" + (", placed at time 0:" if r.placement else ""))
        lines += [f"  - {p}" for p in r.placement]
        lines += [f"  - {m}" for m in r.mechanisms]
    return lines + [""]


def _report_faults(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    """Each fault and its effect per system: what it took, and the P99 TTFT of the requests that arrived
    in the minute before it and in the minute after it."""
    if not any(r.faults for r in results):
        return []
    lines = ["## Faults", "", "| system | time (s) | fault | instances lost | replicas lost | requests retried | "
             "requests dropped | P99 TTFT 60 s before | P99 TTFT 60 s after |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        req = r.requests
        for t, what, inst, reps, retried, dropped in r.faults:
            def p99(lo: float, hi: float, req=req) -> str:
                sel = req[(req.arrival_s >= lo) & (req.arrival_s < hi)]
                if not len(sel):
                    return "-"
                ttft = sel.ttft_s.where(sel.status != "dropped", float("inf"))  # a dropped request never answered
                q = ttft.quantile(0.99, interpolation="higher")  # "higher": no inf - inf
                lost = int((sel.status == "dropped").sum())
                return (f"{q:.3f} s" if q != float("inf") else "dropped") + (f" ({lost} dropped)" if lost else "")
            lines.append(f"| {r.system} | {t:g} | {what} | {inst} | {reps} | {retried} | {dropped} | "
                         f"{p99(t - 60, t)} | {p99(t, t + 60)} |")
    return lines + ["", "In the P99 columns a dropped request counts as never answered. A system without an activator (static, "
                    "MuxServe) cannot replace what it lost: its requests for the lost models wait at the router "
                    "until `sim.request_timeout_s`.", ""]


def _report_claims(summary: pd.DataFrame, results: list[RunResult], setup, notes) -> list[str]:
    from warmsim.experiments.claims import claims_markdown
    return claims_markdown(summary)


#: The sections of report.md, in order: each is ``f(summary, results, setup, notes) -> lines`` (an
#: empty list leaves the section out). A new section is one function and one entry here.
REPORT_SECTIONS: tuple = (_report_header, _report_workload, _report_summary, _report_starts, _report_systems, _report_faults, _report_claims, _report_drops,
                         _report_notes)


def write_report(path: Path, summary: pd.DataFrame, results: list[RunResult], setup, notes=()) -> None:
    lines: list[str] = []
    for section in REPORT_SECTIONS:
        lines += section(summary, results, setup, list(notes))
    Path(path).write_text("\n".join(lines))
