"""Errors that mean "the user's input is wrong" (exit status 2), as opposed to internal bugs (1)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


class UserError(Exception):
    """Bad input or configuration: a malformed trace, an unknown model, a config that cannot fit.

    The message must name the file, row or config key at fault; the CLI prints it on one line and
    exits with status 2, without a traceback.
    """


class SetupWarning(UserWarning):
    """A setup that runs but probably not as meant (e.g. a prewarm placer whose replicas no activator
    takes over). ``warmsim compare`` / ``run`` print each one in full and keep it in report.md."""


class PlanError(RuntimeError):
    """A policy returned a plan the simulator cannot apply (a policy bug, exit status 1)."""


class UserArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose bad arguments are a :class:`UserError` (one line, exit status 2)
    rather than argparse's usage text; ``--help`` still prints and exits 0. Subparsers inherit it."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def writable_dir(path: Path, label: str) -> Path:
    """``path`` as a folder that exists (created if missing) and takes a new file; otherwise a
    :class:`UserError` on one line starting with ``label`` (e.g. ``--out /x``), before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{label}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".warmsim-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        why = "a part of the path is a file" if isinstance(e, (FileExistsError, NotADirectoryError)) else e.strerror
        raise UserError(f"{label}: cannot write there ({why or e})") from None
    return path


def figure_file(path: Path, label: str) -> Path:
    """``path`` as a figure file matplotlib can write: its suffix names a format matplotlib knows
    (png, pdf, svg, ...); otherwise a one-line :class:`UserError` starting with ``label``."""
    from matplotlib.backend_bases import FigureCanvasBase
    path = Path(path)
    known = FigureCanvasBase.get_supported_filetypes()
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in known:
        raise UserError(f"{label}: unknown figure format '{path.suffix or '(none)'}' (known: {', '.join(sorted(known))})")
    return path
