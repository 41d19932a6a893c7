"""``warmsim report DIR [DIR ...]``: one comparison table from many run directories (a hydra sweep,
or several compares), read from their ``summary.csv`` files only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from experiments.outputs import TABLE
from sim.errors import UserArgumentParser, UserError


def _overrides(run_dir: Path) -> str:
    """The hydra overrides that made this run (``.hydra/overrides.yaml``), as one string."""
    f = run_dir / ".hydra" / "overrides.yaml"
    if not f.is_file():
        return ""
    items = yaml.safe_load(f.read_text()) or []
    return " ".join(str(o) for o in items if not str(o).startswith("hydra."))


def collect(dirs: list[Path]) -> pd.DataFrame:
    """Every summary.csv under ``dirs``, with ``run`` (path) and ``overrides`` columns in front."""
    frames = []
    for d in dirs:
        if not d.exists():
            raise UserError(f"{d}: no such directory")
        for f in sorted(d.rglob("summary.csv")):
            try:
                s = pd.read_csv(f)
            except Exception as e:  # a truncated or foreign file
                raise UserError(f"{f}: not a readable summary.csv ({e})") from None
            if "system" not in s.columns or "model" not in s.columns:
                raise UserError(f"{f}: lacks the system/model columns of a warmsim summary.csv")
            s.insert(0, "overrides", _overrides(f.parent))
            s.insert(0, "run", str(f.parent))
            frames.append(s)
    if not frames:
        raise UserError(f"no summary.csv under {', '.join(map(str, dirs))}")
    return pd.concat(frames, ignore_index=True)


def main(argv: list[str]) -> int:
    p = UserArgumentParser(prog="warmsim report", description=__doc__)
    p.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories (searched recursively)")
    p.add_argument("--out", type=Path, default=None,
                   help="write the merged table here (.csv: every column; .md: the printed table)")
    p.add_argument("--all-models", action="store_true", help="one row per model, not only the ALL rows")
    args = p.parse_args(argv)
    table = collect(args.dirs)
    if not args.all_models:
        table = table[table["model"] == "ALL"]
    cols = ["run", "overrides", "model"] + [c for c, _ in TABLE]
    shown = table[[c for c in cols if c in table.columns]].rename(columns=dict(TABLE))
    if shown["overrides"].eq("").all():
        shown = shown.drop(columns=["overrides"])
    else:
        shown = shown.drop(columns=["run"])
    print(shown.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.out is not None:
        if args.out.suffix == ".md":
            args.out.write_text("```\n" + shown.to_string(index=False, float_format=lambda x: f"{x:.3f}") + "\n```\n")
        else:
            table.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")
    return 0

