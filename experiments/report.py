"""``warmsim report DIR [DIR ...]``: one comparison table from many run directories (a hydra sweep,
or several compares), read from their ``summary.csv`` files only.

A run directory counts only when complete (its ``COMPLETE`` marker, written last, exists); an
interrupted, failed or still running one is skipped with a one-line note."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml

from experiments.outputs import MARKER, TABLE, atomic_write, run_state
from sim.errors import UserArgumentParser, UserError


def _overrides(run_dir: Path) -> str:
    """The hydra overrides that made this run (``.hydra/overrides.yaml``), as one string."""
    f = run_dir / ".hydra" / "overrides.yaml"
    if not f.is_file():
        return ""
    try:
        items = yaml.safe_load(f.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "?"
    if not isinstance(items, list):
        return "?"
    return " ".join(str(o) for o in items if not str(o).startswith("hydra."))


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
            try:
                s = pd.read_csv(f)
            except Exception as e:  # a truncated or foreign file
                raise UserError(f"{f}: not a readable summary.csv ({' '.join(str(e).split())})") from None
            if "system" not in s.columns or "model" not in s.columns:
                raise UserError(f"{f}: lacks the system/model columns of a warmsim summary.csv")
            s.insert(0, "overrides", _overrides(f.parent))
            s.insert(0, "run", str(f.parent))
            frames.append(s)
    if not frames:
        raise UserError(f"no complete run (summary.csv with its {MARKER} marker) under {', '.join(map(str, dirs))}")
    return pd.concat(frames, ignore_index=True)


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


def _out_path(out: Path) -> Path:
    """``--out``'s folder created (as ``trace plot`` does) and writable; a directory is an error."""
    if out.is_dir():
        raise UserError(f"warmsim report: --out {out}: is a directory; give a file name ending in .csv or .md")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"warmsim report: --out {out}: cannot create its folder ({e.strerror or e})") from None
    return out


def main(argv: list[str]) -> int:
    p = UserArgumentParser(prog="warmsim report", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories (searched recursively)")
    p.add_argument("--out", type=Path, default=None,
                   help="write the merged table here (.csv: every column; .md: the printed table); "
                        "a missing folder is created")
    p.add_argument("--all-models", action="store_true", help="one row per model, not only the ALL rows")
    args = p.parse_args(argv)
    out = _out_path(args.out) if args.out is not None else None
    table = collect(args.dirs)
    if not args.all_models:
        table = table[table["model"] == "ALL"]
    shown = shown_table(table)
    print(_fmt(shown))
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
