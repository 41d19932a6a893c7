"""A profile is fitted once: :func:`fitted_profile` keys each fit by a hash of the profile's content and
of the code that fits it, and keeps it in an in-process memo and an on-disk cache.

The on-disk cache is one pickle per key in :func:`cache_dir` (``$WARMSIM_CACHE_DIR``, else
``$XDG_CACHE_HOME/warmsim``, else ``~/.cache/warmsim``; under ``fits/``), written atomically (a
temporary file renamed into place). An entry is used only when it unpickles to a record of the same key
holding a :class:`FittedProfile`; a corrupt, truncated or foreign entry is refitted and overwritten,
never trusted. The key covers every file the profile reader reads, the source of this package's modules
(a change to the fitting code makes every entry stale) and the numpy and scipy versions, so a fit from
the cache is the fit that would be made now, bit for bit. An unwritable cache directory only costs the
refit. Warnings the fit raised (e.g. a disk table measured on tmpfs) are stored with it and raised
again on every load, so a run's notes are the same whether its fit came from the cache or not.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from warmsim.sim.costprofile.fit import FittedProfile, fit_profile
from warmsim.sim.costprofile.profile import META_FILE, TABLES, load_profile, table_path

#: Environment variable naming the cache directory (docs/calibration.md, "Fitted once").
CACHE_ENV = "WARMSIM_CACHE_DIR"


@dataclass(frozen=True)
class _Entry:
    """One cached fit: its key, the fitted profile and the warnings the fit raised (category, text)."""

    key: str
    fitted: FittedProfile
    warnings: tuple[tuple[type[Warning], str], ...]


_memo: dict[str, _Entry] = {}
_code_hash: list[str] = []


def cache_dir() -> Path:
    """Where fitted profiles are kept on disk: ``$WARMSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/warmsim``,
    else ``~/.cache/warmsim``."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "warmsim"


def _fitting_code() -> str:
    """Hash of this package's source and of the numeric libraries' versions the fit depends on."""
    if not _code_hash:
        import numpy
        import scipy
        h = hashlib.sha256(f"numpy {numpy.__version__} scipy {scipy.__version__}\0".encode())
        for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _code_hash.append(h.hexdigest())
    return _code_hash[0]


def profile_key(directory: Path) -> str:
    """The cache key of the profile in ``directory``: a hash of every file the profile reader reads
    (``meta.json`` and each table's CSV, an absent one marked) and of the fitting code."""
    h = hashlib.sha256(_fitting_code().encode())
    for path in [Path(directory) / META_FILE, *(table_path(directory, t) for t in TABLES)]:
        try:
            data = path.read_bytes()
            h.update(f"{path.name} {len(data)}\0".encode() + data)
        except OSError:  # absent or unreadable: the reader says so when it loads the profile
            h.update(f"{path.name} absent\0".encode())
    return h.hexdigest()


def _read(path: Path, key: str) -> _Entry | None:
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f)
    except Exception:  # noqa: BLE001 - any unreadable entry (truncated, foreign, old classes) is refitted
        return None
    if not isinstance(entry, _Entry) or entry.key != key or not isinstance(entry.fitted, FittedProfile):
        return None
    return entry


def _write(path: Path, entry: _Entry) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a cache that cannot be written costs only the refit next time


def _fit(directory: Path, key: str) -> _Entry:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_profile(load_profile(directory))
    said = tuple(dict.fromkeys((w.category, str(w.message)) for w in caught))
    return _Entry(key, fitted, said)


def fitted_profile(directory: str | Path, *, use_disk: bool = True) -> FittedProfile:
    """The fitted profile of ``directory``: from the in-process memo, else the on-disk cache, else
    fitted now (and stored in both). Bad profiles raise the reader's :class:`UserError` every time
    (nothing is cached for them)."""
    directory = Path(directory)
    key = profile_key(directory)
    entry = _memo.get(key)
    if entry is None:
        path = cache_dir() / "fits" / f"{key}.pickle"
        entry = _read(path, key) if use_disk else None
        if entry is None:
            entry = _fit(directory, key)
            if use_disk:
                _write(path, entry)
        _memo[key] = entry
    for category, text in entry.warnings:
        warnings.warn(text, category, stacklevel=2)
    return entry.fitted


def clear_memo() -> None:
    """Forget the in-process memo (the on-disk cache stays): the next load reads the disk or refits."""
    _memo.clear()
