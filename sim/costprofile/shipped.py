"""Shipped calibration profiles (one directory each) and the name-or-path resolver.

The shipped profiles are data that ``warmsim calibrate`` and its scripts write: they stay in
``calibrate/profiles/`` (installed as ``warmsim/calibrate/profiles/``, package data), read here by
path; no code of calibrate/ is imported."""

from __future__ import annotations

from pathlib import Path

from warmsim.sim.errors import UserError

#: Directory holding the shipped profiles: ``calibrate/profiles`` next to ``sim/`` (a source checkout
#: and an installed ``warmsim/`` alike).
PROFILES_DIR = Path(__file__).resolve().parents[2] / "calibrate" / "profiles"


def known_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.name for p in PROFILES_DIR.iterdir() if (p / "meta.json").is_file())


def external_note_of(name_or_path: str | Path) -> str | None:
    """:func:`~warmsim.sim.costprofile.profile.external_note` of a profile named in a results table (a shipped
    name or a directory); None when the name is no profile (a constant cost model) or not readable here."""
    from warmsim.sim.costprofile.profile import external_note, read_meta

    try:
        return external_note(read_meta(resolve(name_or_path)))
    except UserError:
        return None


def resolve(name_or_path: str | Path) -> Path:
    """Directory of a shipped profile called ``name_or_path``, or ``name_or_path`` itself when it is a
    profile directory; :class:`UserError` listing the shipped names otherwise."""
    s = str(name_or_path)
    if s in known_profiles():
        return PROFILES_DIR / s
    p = Path(s).expanduser()
    if p.is_dir() and (p / "meta.json").is_file():
        return p
    if p.is_dir():
        raise UserError(f"gpu_profile '{s}': directory has no meta.json (not a calibration profile)")
    raise UserError(f"unknown gpu_profile '{s}' (shipped: {', '.join(known_profiles())}; or give a profile directory)")
