"""``warmsim report DIR [DIR ...] [--html PAGE]``: one comparison table from many run directories (a
hydra sweep, or several compares), read from their ``summary.csv`` files only.

Sweep parameters (the override keys whose values differ between runs, from each run's
``.hydra/overrides.yaml``; the seed excepted) become columns; rows are sorted by them, then system;
runs that differ only in their seed are averaged: each metric's mean and 95% confidence interval
(Student t over the seeds, ``n`` the number of seeds). ``--html`` writes one self-contained page
(``experiments/report_html.py``). The table's computation (sweep parameters, seeds averaged) is
:mod:`warmsim.experiments.report_table`, shared by both.

A run directory counts only when complete (its ``COMPLETE`` marker, written last, exists); an
interrupted, failed or still running one is skipped with a one-line note."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from warmsim.experiments.outputs import MARKER, TABLE, atomic_write, read_config, run_state
from warmsim.experiments.report_table import (
    FAULT_METRICS,
    aggregate,
    override_items,
    overrides_text,
    read_summary,
    repeats,
    shown_aggregate,
    with_params,
)
from warmsim.sim.errors import UserArgumentParser, UserError


def collect(dirs: list[Path], note=None) -> pd.DataFrame:
    """Every complete run's summary.csv under ``dirs``, with ``run`` (path) and ``overrides`` columns
    in front; ``note(line)`` gets one line per skipped (incomplete) run directory."""
    note = note or (lambda line: print(line, file=sys.stderr))
    frames = []
    for d in dirs:
        if not d.exists():
            raise UserError(f"{d}: no such directory")
        for f in sorted(d.rglob("summary.csv")):
            if run_state(f.parent) == "incomplete":
                note(f"warmsim report: skipping {f.parent}: incomplete (no {MARKER} marker: interrupted, "
                     "failed or still running)")
                continue
            s = read_summary(f)
            if override_items(f.parent) is None:  # the runs are told apart by their overrides: they must be read
                raise UserError(f"{f.parent / '.hydra' / 'overrides.yaml'}: not a readable list of overrides (the "
                                "report groups runs by them)")
            s.insert(0, "overrides", overrides_text(f.parent))
            s.insert(0, "run", str(f.parent))
            frames.append(s)
    if not frames:
        raise UserError(f"no complete run (summary.csv with its {MARKER} marker) under {', '.join(map(str, dirs))}")
    if any((Path(fr["run"].iloc[0]) / "faults.csv").is_file() for fr in frames):
        frames = [with_faults(fr, Path(fr["run"].iloc[0])) for fr in frames]
    return pd.concat(frames, ignore_index=True)


def with_faults(summary: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """``summary`` with :data:`FAULT_METRICS` on its ``ALL`` rows (per system, from the run's
    faults.csv; 0 for a run without faults, NaN for one whose config has faults but no faults.csv)."""
    s = summary.copy()
    f = run_dir / "faults.csv"
    table = None
    if f.is_file():
        try:
            table = pd.read_csv(f)
        except Exception as e:  # noqa: BLE001 - a truncated or foreign file
            raise UserError(f"{f}: not a readable faults.csv ({' '.join(str(e).split())[:200]})") from None
        if "system" not in table.columns:
            raise UserError(f"{f}: lacks the system column of a warmsim faults.csv")
    else:
        try:
            events = ((read_config(run_dir).get("faults") or {}).get("events"))
        except UserError:
            events = None
        default = float("nan") if events else 0.0
    all_rows = s["model"] == "ALL"
    for col, src in FAULT_METRICS.items():
        if table is None:
            values = [default] * len(s)
        else:
            g = table.groupby("system")
            per = g.size() if src is None else (g[src].sum() if src in table.columns else pd.Series(dtype=float))
            values = [float(per.get(sysname, 0)) for sysname in s["system"]]
        s[col] = [v if a else float("nan") for v, a in zip(values, all_rows)]
    return s


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The printed columns: each run's overrides (its path too when overrides do not tell runs
    apart), the model and the short-headed metrics."""
    cols = ["run", "overrides", "model"] + [c for c, _ in TABLE]
    shown = table[[c for c in cols if c in table.columns]].rename(columns=dict(TABLE))
    runs = table.drop_duplicates("run")
    if shown["overrides"].eq("").all():
        shown = shown.drop(columns=["overrides"])
    elif runs["overrides"].is_unique:
        shown = shown.drop(columns=["run"])
    return shown


def _fmt(shown: pd.DataFrame) -> str:
    return shown.to_string(index=False, float_format=lambda x: f"{x:.3f}")


def _md_table(table: pd.DataFrame, shown: pd.DataFrame) -> list[str]:
    return ["```", _fmt(shown), "```", ""]


#: Sections of ``--out X.md``, in order: each is ``f(table, shown) -> lines`` (the merged table with
#: every column, and the printed one); append to add one.
MD_SECTIONS: list = [_md_table]


def write_markdown(path: Path, table: pd.DataFrame, shown: pd.DataFrame) -> None:
    lines: list[str] = []
    for section in MD_SECTIONS:
        lines += section(table, shown)
    atomic_write(path, lambda p: p.write_text("\n".join(lines)))


def _out_path(out: Path, flag: str = "--out", suffixes: tuple[str, ...] | None = (".csv", ".md")) -> Path:
    """``--out``'s folder created (as ``trace plot`` does) and writable; a directory is an error."""
    if out.is_dir():
        raise UserError(f"warmsim report: {flag} {out}: is a directory; give a file name ending in "
                        f"{' or '.join(suffixes or ('.csv', '.md'))}")
    if suffixes is not None and out.suffix.lower() not in suffixes:
        raise UserError(f"warmsim report: {flag} {out}: give a file name ending in {' or '.join(suffixes)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"warmsim report: {flag} {out}: cannot create its folder ({e.strerror or e})") from None
    return out


def main(argv: list[str]) -> int:
    p = UserArgumentParser(prog="warmsim report", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories (searched recursively)")
    p.add_argument("--out", type=Path, default=None,
                   help="write the merged table here (.csv: every run's rows and columns, with the sweep "
                        "parameters; .md: the printed table); a missing folder is created")
    p.add_argument("--all-models", action="store_true", help="one row per model, not only the ALL rows")
    p.add_argument("--html", type=Path, nargs="?", const=Path("report.html"), default=None, metavar="PAGE",
                   help="also write one self-contained HTML page (default report.html): tables, figures, "
                        "per-model tails, the paper-claims table, cost profile, commands to reproduce")
    args = p.parse_args(argv)
    out = _out_path(args.out) if args.out is not None else None
    html = _out_path(args.html, "--html", (".html", ".htm")) if args.html is not None else None
    full, params = with_params(collect(args.dirs))
    for line in repeats(full, params):
        print(f"warmsim report: note: {line}", file=sys.stderr)
    table = full if args.all_models else full[full["model"] == "ALL"]
    agg = aggregate(table, params)
    shown = shown_aggregate(agg, params, args.all_models)
    print(_fmt(shown))
    if html is not None:
        from warmsim.experiments.report_html import write_html
        try:
            write_html(html, full, params, [str(d) for d in args.dirs], argv)
        except OSError as e:
            raise UserError(f"warmsim report: --html {html}: cannot write ({e.strerror or e})") from None
        print(f"\nwrote {html} (self-contained: open it in any browser, no network needed)")
    if out is not None:
        try:
            if out.suffix == ".md":
                write_markdown(out, table, shown)
            else:
                atomic_write(out, lambda f: table.to_csv(f, index=False))
        except OSError as e:
            raise UserError(f"warmsim report: --out {out}: cannot write ({e.strerror or e})") from None
        print(f"\nwrote {out}")
    return 0
