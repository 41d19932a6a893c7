"""Run directories: checked writable, and claimed exclusively (``-2``, ``-3`` ... when taken).

Shared by the ``warmsim`` command and the Python API (:func:`warmsim.experiments.api.claim_dir`).
"""

from __future__ import annotations

from pathlib import Path

from warmsim.sim.errors import UserError, writable_dir


def probe_dir(path: Path, key: str) -> None:
    """``path`` exists or can be created, is a directory, and a file can be written in it."""
    writable_dir(path, f"{key}={path}")


def claim_new_dir(path: Path, key: str) -> Path:
    """Create ``path`` exclusively, or ``path-2``, ``path-3``, ... when another run (e.g. one started in
    the same second) already holds it: every run gets a directory of its own."""
    probe_dir(path.parent, key)
    for k in range(1, 10_000):
        cand = path if k == 1 else path.with_name(f"{path.name}-{k}")
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            continue
        except OSError as e:
            raise UserError(f"{key}={cand}: cannot create ({e.strerror or e})") from None
    raise UserError(f"{key}={path}: no free directory name")
