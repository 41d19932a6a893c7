"""Entry points the ``warmsim`` CLI wires to: ``warmsim calibrate`` and ``warmsim estimate``.

Both raise :class:`warmsim.sim.errors.UserError` on bad input (the CLI prints it and exits 2).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from warmsim.sim.errors import UserArgumentParser, UserError


def estimate_main(argv: list[str]) -> int:
    """``warmsim estimate model=NAME source=SRC [key=value ...]`` (keys: :func:`warmsim.calibrate.estimate.usage`)."""
    from warmsim.calibrate.estimate import estimate, format_estimate, parse_args, usage

    if any(a in ("-h", "--help", "help") for a in argv):
        print(usage())
        return 0
    req = parse_args(list(argv))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = estimate(req)
    print(format_estimate(est))
    for note in dict.fromkeys(str(w.message) for w in caught):
        print(f"note: {note}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from warmsim.calibrate.harness.backends import DEVICES

    ap = UserArgumentParser(prog="warmsim calibrate",
                                 description="Measure a GPU calibration profile (needs a CUDA GPU and the "
                                             "[calibrate] extra), or check an existing one.")
    ap.add_argument("--quick", action="store_true", help="small sweep (~1 min) instead of the full one (~5 min)")
    ap.add_argument("--out", type=Path, default=None,
                    help="profile directory to write (default: ./profiles/<gpu-name>)")
    ap.add_argument("--sections", default=None, help="comma-separated subset of sections to run")
    ap.add_argument("--scratch", type=Path, default=None, help="directory for the disk test file (default: the system's temporary "
                    "directory; pick one on the disk to measure, since /tmp is often in memory)")
    ap.add_argument("--device", choices=DEVICES, default="cuda",
                    help="cuda: measure GPU 0 (default); fake: a dry run with synthetic timings that writes a "
                         "profile labelled not measured")
    ap.add_argument("--check", metavar="PROFILE", default=None,
                    help="measure nothing: compare PROFILE (a shipped name or a directory) with the public "
                         "sanity ranges; exit status 1 if a value lies outside its range")
    ap.add_argument("--diff", nargs=2, metavar=("A", "B"), default=None,
                    help="measure nothing: headline numbers of profiles A and B side by side, with B/A")
    ap.add_argument("--vs-reference", nargs="+", metavar="PROFILE", default=None,
                    help="measure nothing: each PROFILE's costs against the real H100 measurements of "
                         "calibrate/reference_data, figure by figure (a Markdown table)")
    return ap


def _fit_quietly(profile):
    """Fit a loaded profile; fitting notes (e.g. extrapolation) are not what a check or a diff
    reports, so they are silenced."""
    from warmsim.sim.costprofile.fit import fit_profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_profile(profile)


def _load(name_or_path: str | Path):
    from warmsim.sim.costprofile.profile import load_profile
    from warmsim.sim.costprofile.shipped import resolve

    return load_profile(resolve(name_or_path))


def _sanity(name_or_path: str | Path) -> tuple[str, int]:
    """The sanity table of a profile and how many values lie outside their range."""
    from warmsim.calibrate.sanity import check_profile, format_checks, format_spreads, outside, spreads
    from warmsim.sim.costprofile.profile import external_note

    profile = _load(name_or_path)  # read once: fitted for the checks, raw for the spreads
    fitted = _fit_quietly(profile)
    checks = check_profile(fitted)
    text = (format_checks(fitted.name, fitted.measured, checks, external_note(fitted.meta)) + "\n"
            + format_spreads(spreads(profile)))
    return text, len(outside(checks))


def _check_out(out: Path) -> None:
    """The profile directory can be created and written (one line, exit 2, before measuring)."""
    from warmsim.sim.errors import writable_dir
    writable_dir(out, f"calibrate: --out {out}")


def calibrate_main(argv: list[str]) -> int:
    """``warmsim calibrate [--quick] [--out PATH] [--device cuda|fake] [--check PROFILE] [--diff A B]``: run the
    harness on this machine's GPU (or the fake backend), then print the sanity table."""
    from warmsim.calibrate.harness.backends import open_backend
    from warmsim.calibrate.harness.device import NoDeviceError
    from warmsim.calibrate.harness.plan import FULL, QUICK
    from warmsim.calibrate.harness.runner import run_sweep
    from warmsim.calibrate.harness.sections import SECTIONS

    args = _parser().parse_args(list(argv))
    if args.diff:
        from warmsim.calibrate.diff import format_diff
        from warmsim.sim.costmodel import ProfileCostModel

        print(format_diff(*(ProfileCostModel(_fit_quietly(_load(p))) for p in args.diff)))
        return 0
    if args.vs_reference:
        from warmsim.calibrate.refcheck import table
        from warmsim.sim.costmodel import ProfileCostModel

        print(table([ProfileCostModel(_fit_quietly(_load(p))) for p in args.vs_reference]))
        return 0
    if args.check:
        table, n_out = _sanity(args.check)
        print(table)
        return 1 if n_out else 0
    sections = args.sections.split(",") if args.sections else None
    unknown = [s for s in sections or [] if s not in SECTIONS]
    if unknown:
        raise UserError(f"calibrate: --sections: unknown {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    if args.out is not None:
        _check_out(args.out)
    try:
        backend = open_backend(args.device, scratch=args.scratch)
    except NoDeviceError as e:
        raise UserError(f"calibrate: {e}") from None
    device = backend.device
    try:
        info = device.info()
        gpu = str(info["gpu"].get("name", "gpu")).lower().replace(" ", "_")
        out = args.out
        if out is None:  # a given --out was checked before the device was opened
            out = Path("profiles") / gpu
            _check_out(out)
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        meta = run_sweep(device, out, QUICK if args.quick else FULL, name=Path(out).name, sections=sections,
                         measured=backend.measured, label=backend.label)
    finally:
        device.close()
    failed = {k: v["reason"] for k, v in meta["sections"].items() if v["status"] != "ok"}
    print(f"wrote {out}: {len(meta['sections']) - len(failed)} sections ok, {len(failed)} failed"
          + ("" if backend.measured else f" ({backend.label})"))
    for k, why in failed.items():
        print(f"  {k}: FAILED: {why}")
    try:
        print(_sanity(out)[0])
    except UserError as e:  # a profile too incomplete to fit still keeps what it measured
        print(f"sanity check not possible: {e}")
    return 0
