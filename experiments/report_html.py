"""``warmsim report DIR... --html PAGE``: one self-contained HTML page (no network: styles inline,
figures as base64 PNG) with the sweep table (mean and 95% CI over seeds), figures with the intervals,
per-model tails, the paper-claims table, the cost profile and whether it was measured, and the
commands that reproduce every run."""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import pandas as pd
import yaml

from warmsim.experiments.outputs import atomic_write
from warmsim.experiments.report_table import aggregate, overrides_text, shown_aggregate

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}code,pre{background:#f6f6f6;
font-size:.85em}pre{padding:.6em;overflow-x:auto}.note{color:#555;font-size:.9em}img{max-width:100%}"""


def _png(fig, alt: str) -> str:
    """The figure as an embedded PNG, described by ``alt`` (what it plots, for readers without images)."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return (f'<img alt="{html.escape(alt, quote=True)}" '
            f'src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')


def _over(rows: pd.DataFrame, metric: str) -> str:
    """What a point is: a mean over seeds with its interval, or one run."""
    ci = rows.get(f"{metric}_ci")
    return "mean over seeds, 95% CI" if ci is not None and ci.notna().any() else "one seed each: no interval"


def _errorbars(ax, xs, ys, cis) -> None:
    """95% CI whiskers where there is an interval (two seeds or more); none for n = 1."""
    pts = [(x, y, c) for x, y, c in zip(xs, ys, cis) if c == c and c is not None]
    if pts:
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=3)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, na_rep="-", float_format=lambda x: f"{x:.3f}", border=0)


def _num(values) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def _combo_label(row, keys) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys) or "all runs"


def fig_metric_vs_param(agg: pd.DataFrame, params: list[str], metric: str, label: str) -> str | None:
    """``metric`` (ALL rows) against the first numeric sweep parameter, a line per system (and per
    value of the other parameters), with 95% CI error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    allrows = agg[agg["model"] == "ALL"]
    x_key = next((p for p in params if _num(allrows[p].unique()) is not None and allrows[p].nunique() > 1), None)
    if x_key is None:
        return None
    rest = [p for p in params if p != x_key]
    fig, ax = plt.subplots(figsize=(7, 4))
    for keys, g in allrows.groupby(["system", *rest], sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        g = g.assign(_x=_num(g[x_key])).sort_values("_x")
        ci = g.get(f"{metric}_ci")
        lab = keys[0] + ("" if not rest else " (" + ", ".join(f"{k}={v}" for k, v in zip(rest, keys[1:])) + ")")
        line = ax.plot(g["_x"], g[metric], marker="o", label=lab)[0]
        if ci is not None:  # whiskers only where two or more seeds give an interval
            pts = [(x, y, c) for x, y, c in zip(g["_x"], g[metric], ci) if c == c]
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="none",
                            ecolor=line.get_color(), capsize=3)
    ax.set_xlabel(x_key)
    ax.set_ylabel(label)
    if metric.startswith("ttft"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{label} vs {x_key} ({_over(allrows, metric)})")
    return _png(fig, f"{label} against {x_key}, a line per system; mean over seeds with 95% confidence intervals")


def fig_bars(agg: pd.DataFrame, params: list[str], metric: str, label: str) -> str:
    """``metric`` per system (ALL rows) as bars with 95% CI, a group per parameter combination."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    allrows = agg[agg["model"] == "ALL"]
    labels = pd.Series([_combo_label(r, params) for _, r in allrows.iterrows()], index=allrows.index, dtype=object)
    combos = list(dict.fromkeys(labels))
    systems = list(dict.fromkeys(allrows["system"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(combos) * max(1, len(systems)) / 2), 4))
    w = 0.8 / max(1, len(systems))
    for j, s in enumerate(systems):
        xs, ys, es = [], [], []
        for i, c in enumerate(combos):
            row = allrows[(allrows["system"] == s) & (labels == c)]
            if len(row):
                xs.append(i + j * w)
                ys.append(float(row[metric].iloc[0]))
                e = row.get(f"{metric}_ci")
                es.append(float("nan") if e is None else float(e.iloc[0]))
        ax.bar(xs, ys, w, label=s)
        _errorbars(ax, xs, ys, es)
    ax.set_xticks([i + w * (len(systems) - 1) / 2 for i in range(len(combos))])
    ax.set_xticklabels(combos, fontsize=7, rotation=20 if len(combos) > 3 else 0)
    ax.set_ylabel(label)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"{label} per system ({_over(allrows, metric)})")
    return _png(fig, f"{label} per system, a group of bars per parameter combination; whiskers: 95% confidence "
                     "interval where two or more seeds")


def fig_per_model(agg: pd.DataFrame, params: list[str], combo: dict) -> str:
    """P99 TTFT per model and system for one parameter combination (bars, 95% CI)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sel = agg[agg["model"] != "ALL"]
    for k, v in combo.items():
        sel = sel[sel[k] == v]
    models = list(dict.fromkeys(sel["model"]))
    systems = list(dict.fromkeys(sel["system"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(models) * max(1, len(systems)) / 2), 3.6))
    w = 0.8 / max(1, len(systems))
    for j, s in enumerate(systems):
        g = sel[sel["system"] == s].set_index("model").reindex(models)
        xs = [i + j * w for i in range(len(models))]
        ax.bar(xs, g["ttft_p99_s"], w, label=s)
        if "ttft_p99_s_ci" in g:
            _errorbars(ax, xs, list(g["ttft_p99_s"]), list(g["ttft_p99_s_ci"]))
    ax.set_xticks([i + w * (len(systems) - 1) / 2 for i in range(len(models))])
    ax.set_xticklabels(models, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("P99 TTFT (s)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"P99 TTFT per model ({_combo_label(combo, list(combo))})")
    return _png(fig, f"P99 TTFT per model and system ({_combo_label(combo, list(combo))}), log scale")


def commands(full: pd.DataFrame) -> list[str]:
    """``warmsim`` commands that reproduce the runs: a sweep's ``-m`` command once (from its
    multirun.yaml), every other run's own command (from .hydra/)."""
    out: list[str] = []
    seen_sweeps: set[Path] = set()
    for r in full["run"].unique():
        d = Path(r)
        sweep = next((p for p in [d.parent, d.parent.parent] if (p / "multirun.yaml").is_file()), None)
        if sweep is not None:
            if sweep in seen_sweeps:
                continue
            seen_sweeps.add(sweep)
            try:
                m = yaml.safe_load((sweep / "multirun.yaml").read_text()) or {}
                hc = m.get("hydra") or {}
                task = [str(x) for x in (hc.get("overrides") or {}).get("task") or []]
                name = (hc.get("job") or {}).get("name") or "run"
                out.append(f"warmsim {name} -m {' '.join(task)} hydra.sweep.dir={sweep}".replace("  ", " "))
                continue
            except (OSError, yaml.YAMLError):
                pass
        name = "compare"
        hy = d / ".hydra" / "hydra.yaml"
        if hy.is_file():
            try:
                name = ((yaml.safe_load(hy.read_text()) or {}).get("hydra", {}).get("job", {}) or {}).get("name") or name
            except (OSError, yaml.YAMLError):
                pass
            out.append(f"warmsim {name} {overrides_text(d)}".rstrip())
        else:
            out.append(f"# {d}: no hydra record (an API or external run); its config.yaml holds the settings")
    return list(dict.fromkeys(out))


def _measured_html(profile: str, measured: bool) -> str:
    """Whether a run's cost profile was measured, and by whom (``profile_measured`` and the profile's meta)."""
    from warmsim.sim.costprofile.shipped import external_note_of
    if not measured:
        return "<b>not measured</b> (analytic or constant)"
    return html.escape(external_note_of(profile) or "measured on a GPU")


def rate_sweep(full: pd.DataFrame, params: list[str]) -> pd.DataFrame | None:
    """The ``ALL`` rows of a sweep over ``workload.rps`` alone, one per system and rate (means over
    seeds), with ``rps`` and, when every run used one, ``alpha`` columns (for the claims measured on a
    sweep); None when the runs differ in anything else than the rate, the system and the seed."""
    if [p for p in params if p != "run"] != ["workload.rps"]:
        return None
    from warmsim.experiments.outputs import read_config
    rows = full[full["model"] == "ALL"].assign(rps=pd.to_numeric(full["workload.rps"], errors="coerce"))
    rows = rows.dropna(subset=["rps"])
    sweep = rows.groupby(["system", "rps"], sort=False)[["slo_attainment", "ttft_p99_s"]].mean().reset_index()
    sweep["model"] = "ALL"
    alphas = {(read_config(Path(r)).get("workload") or {}).get("alpha") for r in full["run"].unique()}
    if len(alphas) == 1 and None not in alphas:
        sweep["alpha"] = float(alphas.pop())
    return sweep


def write_html(path: Path, full: pd.DataFrame, params: list[str], dirs: list[str], argv: list[str]) -> None:
    """The page (see the module docstring); ``full``: every run's summary rows with the parameters."""
    from warmsim.experiments.claims import claims_table
    agg = aggregate(full, params)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>warmsim report</title><style>{CSS}</style>"
             "</head><body>", "<h1>warmsim report</h1>",
             f"<p class='note'>{full['run'].nunique()} run(s) from {html.escape(', '.join(dirs))}; generated "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}. Sweep parameters: "
             f"{html.escape(', '.join(params) or 'none')}. Rows averaged over seeds: mean ± half-width of the 95% "
             "confidence interval (Student t), n = seeds.</p>"]
    prof = full.drop_duplicates(["profile", "profile_measured"])[["profile", "profile_measured"]] \
        if "profile" in full else pd.DataFrame()
    parts.append("<h2>Cost profile</h2><ul>" + "".join(
        f"<li><code>{html.escape(str(r.profile))}</code>: "
        f"{_measured_html(str(r.profile), bool(r.profile_measured))}</li>"
        for r in prof.itertuples(index=False)) + "</ul>")
    parts.append("<h2>Summary (all models)</h2>" + _table(shown_aggregate(agg[agg["model"] == "ALL"], params, False)))
    parts.append("<h2>Figures</h2>")
    for metric, label in (("ttft_p99_s", "P99 TTFT (s)"), ("slo_attainment", "SLO attainment"),
                          ("mean_gpus_busy", "mean GPUs busy")):
        if metric not in agg:
            continue
        img = fig_metric_vs_param(agg, params, metric, label) if params else None
        parts.append(img or fig_bars(agg, params, metric, label))
    parts.append("<h2>Per-model tails</h2>")
    per_model = agg[agg["model"] != "ALL"]
    if len(per_model):
        combos = per_model[params].drop_duplicates().to_dict("records") if params else [{}]
        for combo in combos[:6]:
            parts.append(fig_per_model(agg, params, combo))
        tails = shown_aggregate(per_model, params, True)
        parts.append(_table(tails))
        if len(combos) > 6:
            parts.append(f"<p class='note'>figures for the first 6 of {len(combos)} parameter combinations; the "
                         "table has all.</p>")
    parts.append("<h2>Paper claims</h2>")
    runs = full.groupby("run", sort=False)["system"].nunique().sort_values(ascending=False, kind="stable")
    best = runs.index[0]
    summary = full[full["run"] == best].drop(columns=[c for c in ("run", "overrides", *params, "seed") if c in full])
    parts.append(f"<p class='note'>From run <code>{html.escape(best)}</code> "
                 f"(<code>{html.escape(overrides_text(Path(best)) or 'no overrides')}</code>), the run with the most "
                 "systems. [P]: the paper's text; [S]: a third-party summary. Ratio = warmsim / paper.</p>")
    parts.append(_table(claims_table(summary, sweep=rate_sweep(full, params))))
    parts.append("<h2>Commands to reproduce</h2><pre>" + html.escape("\n".join(
        commands(full) + [f"warmsim report {' '.join(argv)}"])) + "</pre>")
    parts.append("<h2>Every run</h2>" + _table(full[full["model"] == "ALL"][
        [c for c in ["run", "overrides", *params, "seed", "system", "requests", "ttft_p99_s", "slo_attainment",
                     "cold_starts", "mean_gpus_busy"] if c in full]]))
    parts.append("</body></html>")
    atomic_write(Path(path), lambda p: p.write_text("\n".join(parts), encoding="utf-8"))
