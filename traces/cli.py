"""``warmsim trace describe|plot|list``: look at a trace before building workloads from it.

The lead's CLI calls :func:`main` with the arguments after ``warmsim trace`` and turns
:class:`warmsim.sim.errors.UserError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import pandas as pd

from warmsim.sim.errors import UserArgumentParser, UserError, figure_file, writable_dir
from warmsim.traces import describe as describe_mod
from warmsim.traces import registry

#: Shortest rate bin: finer bins make arrays of billions of entries on a day-long trace.
MIN_BIN_S = 0.01


def _seconds(lo: float, open_lo: bool):
    """An argparse type: a finite number of seconds above ``lo`` (or at least ``lo``)."""
    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not math.isfinite(x) or x < lo or (open_lo and x <= lo) or x > 1e10:
            raise argparse.ArgumentTypeError(f"got {text}; allowed: a number of seconds "
                                             f"{'>' if open_lo else '>='} {lo:g} and at most 1e10")
        return x
    return parse


def _parser() -> argparse.ArgumentParser:
    p = UserArgumentParser(prog="warmsim trace", description="Describe or plot a trace (name or file).")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the built-in trace names")
    for name, help_ in (("describe", "print a summary table per model/service"),
                        ("plot", "write a PNG: arrival rate over time and token-length histograms")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("trace", help="a trace name (see 'warmsim trace list') or a CSV/JSONL file")
        s.add_argument("--start", type=_seconds(0.0, False), default=0.0,
                       help="window start, seconds from the trace start")
        s.add_argument("--duration", type=_seconds(0.0, True), default=None,
                       help="window length in seconds (default: to the end)")
        s.add_argument("--bin", type=_seconds(MIN_BIN_S, False), default=None,
                       help=f"rate bin in seconds, at least {MIN_BIN_S:g} (describe: 60; plot: span/300)")
        s.add_argument("--sort", action="store_true", help="sort a file whose timestamps go backwards")
        if name == "plot":
            s.add_argument("--out", default=None,
                           help="PNG path, or an existing directory to write <trace>.png in (default: <trace>.png)")
    return p


def main(argv: list[str]) -> int:
    """Run ``warmsim trace ...``; return the exit status (UserError propagates to the caller)."""
    args = _parser().parse_args(argv)
    if args.cmd == "list":
        for name in registry.trace_names():
            print(f"{name:24s} {registry.resolve(name).description}")
        return 0
    if args.cmd == "describe":
        table, notes = describe_mod.describe(args.trace, args.start, args.duration, args.bin or 60.0, args.sort)
        for k, v in notes.items():
            print(f"{k}: {v}")
        with pd.option_context("display.max_columns", None, "display.width", 200, "display.float_format", "{:.6g}".format):
            print(table.to_string(index=False))
        return 0
    from warmsim.traces.plot import plot

    out = _plot_path(args.out, f"{registry.resolve(args.trace).name.replace('/', '_').rsplit('.', 1)[0]}.png")
    try:
        path = plot(args.trace, out, args.start, args.duration, args.bin, args.sort)
    except OSError as e:
        raise UserError(f"warmsim trace plot: --out {out}: cannot write ({e.strerror or e})") from None
    print(f"wrote {path}")
    return 0


def _plot_path(out: str | None, default: str) -> Path:
    """Where ``trace plot`` writes: ``--out`` as a file, or ``DIR/<trace>.png`` when ``--out`` is an
    existing directory (or ends with a slash); its folder is created and must be writable."""
    if out is None:
        path = Path(default)
    elif Path(out).is_dir() or out.endswith(("/", os.sep)):
        path = Path(out) / default
    else:
        path = Path(out)
        if not path.suffix:
            path = path.with_suffix(".png")
    if path.exists() and not path.is_file():
        raise UserError(f"warmsim trace plot: --out {path}: exists and is not a file")
    figure_file(path, f"warmsim trace plot: --out {path}")
    writable_dir(path.parent, f"warmsim trace plot: --out {path}: the folder {path.parent}")
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
