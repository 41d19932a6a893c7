"""``warmsim trace describe|plot|list``: look at a trace before building workloads from it.

The lead's CLI calls :func:`main` with the arguments after ``warmsim trace`` and turns
:class:`sim.errors.UserError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from sim.errors import UserArgumentParser
from traces import describe as describe_mod
from traces import registry


def _parser() -> argparse.ArgumentParser:
    p = UserArgumentParser(prog="warmsim trace", description="Describe or plot a trace (name or file).")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the built-in trace names")
    for name, help_ in (("describe", "print a summary table per model/service"),
                        ("plot", "write a PNG: arrival rate over time and token-length histograms")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("trace", help="a trace name (see 'warmsim trace list') or a CSV/JSONL file")
        s.add_argument("--start", type=float, default=0.0, help="window start, seconds from the trace start")
        s.add_argument("--duration", type=float, default=None, help="window length in seconds (default: to the end)")
        s.add_argument("--bin", type=float, default=None, help="rate bin in seconds (describe: 60; plot: span/300)")
        s.add_argument("--sort", action="store_true", help="sort a file whose timestamps go backwards")
        if name == "plot":
            s.add_argument("--out", default=None, help="PNG path (default: <trace>.png)")
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
    from traces.plot import plot

    out = args.out or f"{registry.resolve(args.trace).name.replace('/', '_').rsplit('.', 1)[0]}.png"
    path = plot(args.trace, out, args.start, args.duration, args.bin, args.sort)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
