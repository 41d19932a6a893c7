"""The table of ``warmsim report``, computed from run directories: each run's overrides and sweep
parameters, seeds averaged (mean and 95% confidence interval) and the printed cells. Shared by the
text report (:mod:`warmsim.experiments.report`), its HTML page (:mod:`warmsim.experiments.report_html`)
and the figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from warmsim.experiments.outputs import TABLE, read_config
from warmsim.sim.errors import UserError

#: Fault columns ``report`` adds to the ``ALL`` rows when a run has faults.csv: name -> faults.csv column
#: summed per system (None: the number of faults).
FAULT_METRICS = {"faults": None, "fault_instances_lost": "instances_lost", "fault_replicas_lost": "replicas_lost",
                 "fault_requests_retried": "requests_retried", "fault_requests_dropped": "requests_dropped"}
#: The fault columns the printed table shows (when any is not zero), with short headers.
FAULT_TABLE = [("faults", "faults"), ("fault_instances_lost", "inst_lost"), ("fault_requests_retried", "retried"),
               ("fault_requests_dropped", "f_drop")]



def ci95(x) -> float:
    """Half-width of the 95% confidence interval of the mean of ``x`` (Student's t; NaN below two
    values)."""
    from scipy import stats
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / len(x) ** 0.5) if len(x) > 1 else float("nan")


def override_items(run_dir: Path) -> list[str] | None:
    """The hydra overrides that made this run (``.hydra/overrides.yaml``), hydra's own left out;
    ``[]`` when there is no record, None when it is unreadable."""
    f = run_dir / ".hydra" / "overrides.yaml"
    if not f.is_file():
        return []
    try:
        items = yaml.safe_load(f.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(items, list):
        return None
    return [str(o) for o in items if not str(o).startswith(("hydra.", "hydra/"))]


def overrides_text(run_dir: Path) -> str:
    """The overrides as one string (``?`` when unreadable)."""
    items = override_items(run_dir)
    return "?" if items is None else " ".join(items)


def run_params(run_dir: Path) -> dict[str, str]:
    """``key -> value`` of the run's overrides (``+``/``~`` prefixes dropped), plus its ``seed`` from
    config.yaml when the overrides do not set it."""
    out: dict[str, str] = {}
    for o in override_items(run_dir) or []:
        k, sep, v = o.partition("=")
        if sep:
            out[k.lstrip("+~")] = v
    if "seed" not in out and (run_dir / "config.yaml").is_file():
        try:
            out["seed"] = str(read_config(run_dir).get("seed", 0))
        except (OSError, yaml.YAMLError):
            pass
    return out


#: Metrics averaged over seeds (numeric summary columns, in summary.csv's order).
SEED = "seed"
#: Columns every summary.csv that ``report`` and ``figures`` read must have, the metrics as numbers
#: (a file without them was written by something else, or edited): a one-line error names the file.
SUMMARY_REQUIRED = ("system", "model", "requests", "completed", "dropped", "ttft_p50_s", "ttft_p99_s", "ttft_mean_s",
                    "slo_attainment")


def read_summary(f: Path, columns=None) -> pd.DataFrame:
    """``f`` (a run's summary.csv) as a DataFrame, checked: readable, with :data:`SUMMARY_REQUIRED`
    (metrics numeric); a one-line UserError naming the file and the column otherwise."""
    try:
        s = pd.read_csv(f)
        if columns is not None:
            s = s[[c for c in columns if c in s.columns]]
    except Exception as e:  # noqa: BLE001 - a truncated, binary or foreign file
        raise UserError(f"{f}: not a readable summary.csv ({' '.join(str(e).split())[:200]})") from None
    want = [c for c in SUMMARY_REQUIRED if columns is None or c in columns]
    missing = [c for c in want if c not in s.columns]
    if missing:
        raise UserError(f"{f}: lacks column(s) {', '.join(missing)} of a warmsim summary.csv (written by something "
                        "else, or edited?)")
    for c in want[2:]:
        if not pd.api.types.is_numeric_dtype(s[c]):
            bad = next((v for v in s[c] if pd.isna(pd.to_numeric(pd.Series([v]), errors="coerce")).iloc[0]), None)
            raise UserError(f"{f}: column {c} holds {bad!r}, not a number")
    return s


def sweep_params(table: pd.DataFrame, per_run: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Override keys whose values differ between the runs of ``table`` (seed excepted), first seen first
    (``per_run``: the runs' :func:`run_params` when already read)."""
    params: dict[str, set] = {}
    if per_run is None:
        per_run = {r: run_params(Path(r)) for r in table.drop_duplicates("run")["run"]}
    keys = list(dict.fromkeys(k for p in per_run.values() for k in p))
    for k in keys:
        params[k] = {p.get(k) for p in per_run.values()}
    cols = set(table.columns)  # `system=a,b` of `warmsim run -m`: the system column already tells
    return [k for k in keys if k != SEED and k not in cols and len(params[k]) > 1]


def _sort_value(v):
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def with_params(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``table`` with a column per sweep parameter and ``seed``, sorted by the parameters (numbers
    numerically), system, model and seed. Runs are told apart by their parsed overrides alone, never by
    their paths: runs whose overrides differ only in ``seed`` are the seeds of one row of
    :func:`aggregate` (see :func:`repeats` for runs that share their seed too)."""
    per_run = {r: run_params(Path(r)) for r in table["run"].unique()}
    params = sweep_params(table, per_run)  # the runs' files read once
    t = table.copy()
    for k in [*params, SEED]:
        t.insert(2, k, [per_run[r].get(k, "") for r in t["run"]])
    order_sys = {s: i for i, s in enumerate(dict.fromkeys(t["system"]))}
    key = [tuple(_sort_value(v) for v in row) for row in t[params].itertuples(index=False)] if params else [()] * len(t)
    t["_k"] = key
    t["_s"] = t["system"].map(order_sys)
    t["_m"] = (t["model"] == "ALL").astype(int)
    t["_seed"] = [_sort_value(v) for v in t[SEED]]
    t = t.sort_values(["_k", "_s", "_m", "model", "_seed"], kind="stable").drop(columns=["_k", "_s", "_m", "_seed"])
    return t.reset_index(drop=True), params


def repeats(table: pd.DataFrame, params: list[str]) -> list[str]:
    """One line per (parameters, seed, system) that more than one run directory holds: the same
    overrides and seed run twice (e.g. two ``compare`` directories), which :func:`aggregate` counts as
    separate values of ``n``."""
    rows = table[table["model"] == "ALL"] if "model" in table else table
    out = []
    for k, g in rows.groupby([*params, SEED, "system"], sort=False, dropna=False):
        if g["run"].nunique() > 1:
            k = k if isinstance(k, tuple) else (k,)
            what = ", ".join(f"{a}={b}" for a, b in zip([*params, SEED, "system"], k))
            out.append(f"{g['run'].nunique()} runs share {what} ({', '.join(list(g['run'].unique())[:2])}"
                       f"{', ...' if g['run'].nunique() > 2 else ''}): counted as repeats in n")
    return out


def aggregate(table: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """One row per (parameters, system, model): ``n`` seeds, and for each numeric metric its mean
    (``<metric>``) and the half-width of its 95% confidence interval (``<metric>_ci``; NaN for one seed)."""
    metrics = [c for c in table.columns if c not in ("run", "overrides", "system", "model", SEED, *params)
               and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]
    keys = [*params, "system", "model"]
    rows = []
    for k, g in table.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, k if isinstance(k, tuple) else (k,)))
        n = len(g)
        row["n"] = n
        row["seeds"] = ",".join(str(x) for x in g[SEED])
        for m in metrics:
            x = g[m].to_numpy(dtype=float)
            x = x[~pd.isna(x)]
            row[m] = float(x.mean()) if len(x) else float("nan")
            row[f"{m}_ci"] = ci95(x)
        for c in ("profile", "profile_measured"):
            if c in g:
                row[c] = g[c].iloc[0]
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["whole"] = {m: _whole(table[m]) for m in metrics}  # counts print without decimals
    return out


def _whole(col: pd.Series) -> bool:
    """Whether a metric is a count: an integer column of summary.csv, or a fault count."""
    return pd.api.types.is_integer_dtype(col) or col.name in FAULT_METRICS


def shown_aggregate(agg: pd.DataFrame, params: list[str], all_models: bool) -> pd.DataFrame:
    """The printed table: parameters, system (model), n, and each short-headed metric as
    ``mean ± ci`` (the mean alone for one seed)."""
    cols = [*params, "system"] + (["model"] if all_models else []) + ["n"]
    out = agg[cols].copy()
    faults = [(c, short) for c, short in FAULT_TABLE if c in agg and agg[c].fillna(0).ne(0).any()]
    for c, short in [*TABLE, *faults]:
        if c == "system" or c not in agg:
            continue
        mean, ci = agg[c], agg.get(f"{c}_ci")
        whole = agg.attrs.get("whole", {}).get(c, False)
        out[short] = [_pm(a, b, whole) for a, b in zip(mean, ci if ci is not None else [float("nan")] * len(mean))]
    return out


def _pm(mean: float, ci: float, whole: bool = False) -> str:
    """``mean ± ci`` (the mean alone when there is no interval); a count (``whole``) whose mean is a
    whole number prints without decimals, otherwise with one."""
    if mean != mean:
        return "-"
    if whole:
        s = f"{mean:.0f}" if float(mean).is_integer() else f"{mean:.1f}"
        return s if ci != ci else f"{s}±{ci:.1f}"
    digits = 3 if abs(mean) < 100 else 1
    s = f"{mean:.{digits}f}"
    return s if ci != ci else f"{s}±{ci:.{digits}f}"
