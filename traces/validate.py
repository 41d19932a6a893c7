"""Checks on user-supplied trace tables that turn bad input into a one-line :class:`UserError`.

Every message names the file and the data row (1-based, header not counted) and the file line, so a
user can open the file at the fault. Nothing here drops or repairs rows silently: a check either
passes or raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError


def where(path: str | Path, row: int, header_lines: int = 1) -> str:
    """``"<file>: row N (line L)"`` for the 0-based data row ``row``."""
    return f"{Path(path).name}: row {row + 1} (line {row + 1 + header_lines})"


def require_nonempty(df: pd.DataFrame, path: str | Path) -> None:
    """Raise if the table has no data rows."""
    if len(df) == 0:
        raise UserError(f"{Path(path).name}: row 1: the file has no data rows (empty file)")


def require_columns(columns: Sequence[str], want: Sequence[str], path: str | Path) -> None:
    """Raise if any of ``want`` is missing from the header ``columns`` (names the ones seen)."""
    missing = [c for c in want if c not in columns]
    if missing:
        raise UserError(
            f"{Path(path).name}: row 0 (header, line 1): missing column(s) {missing}; "
            f"found {list(columns)}, want {list(want)}"
        )


def numeric_column(
    df: pd.DataFrame,
    col: str,
    path: str | Path,
    *,
    integer: bool = True,
    min_value: float | None = 0,
    max_value: float | None = None,
    header_lines: int = 1,
) -> np.ndarray:
    """Column ``col`` as numbers; raise at the first missing, non-numeric, NaN or too-small value.

    Args:
        df: the raw table (values may be strings).
        col: column to convert.
        path: file the table came from (for the message).
        integer: require whole numbers (token counts).
        min_value: smallest allowed value, or None for no bound.
        max_value: largest allowed value, or None for no bound.
        header_lines: lines before the first data row in the file.
    """
    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[i]
        what = "is missing" if shown is None or (isinstance(shown, float) and np.isnan(shown)) or shown == "" \
            else f"is not a finite number: {shown!r}"
        raise UserError(f"{where(path, i, header_lines)}: {col} {what}")
    if integer:
        frac = values != np.floor(values)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise UserError(f"{where(path, i, header_lines)}: {col} must be a whole number, got {raw.iloc[i]!r}")
    if min_value is not None:
        low = values < min_value
        if low.any():
            i = int(np.flatnonzero(low)[0])
            raise UserError(f"{where(path, i, header_lines)}: {col} must be >= {min_value}, got {raw.iloc[i]!r}")
    if max_value is not None:
        high = values > max_value
        if high.any():
            i = int(np.flatnonzero(high)[0])
            raise UserError(f"{where(path, i, header_lines)}: {col} must be <= {max_value:g}, got {raw.iloc[i]!r}")
    return values


#: Longest span of a per-request trace in seconds (about 317 years): a timestamp beyond it is a typo or
#: a unit error, and would make rate bins and windows of absurd sizes.
MAX_SPAN_S = 1e10


def check_span(times: np.ndarray, path: str | Path, col: str, *, header_lines: int = 1) -> None:
    """Raise at the first time more than :data:`MAX_SPAN_S` seconds after the earliest one."""
    if not len(times):
        return
    far = times - times.min() > MAX_SPAN_S
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise UserError(f"{where(path, i, header_lines)}: {col} is {times[i] - times.min():.3g} s after the trace's "
                        f"first request; allowed: at most {MAX_SPAN_S:g} s (a unit error?)")


def check_sorted(times: np.ndarray, path: str | Path, col: str, *, sort: bool, header_lines: int = 1) -> np.ndarray:
    """Return a stable sort order for ``times``; raise at the first step backwards unless ``sort``.

    The message names the row where time goes backwards and suggests ``sort=True``.
    """
    back = np.diff(times) < 0
    if back.any() and not sort:
        i = int(np.flatnonzero(back)[0]) + 1
        raise UserError(
            f"{where(path, i, header_lines)}: {col} goes backwards ({times[i]!r} after {times[i - 1]!r}); "
            f"{int(back.sum())} such step(s) in the file; pass sort=True (CLI: --sort) to sort by time"
        )
    return np.argsort(times, kind="stable")
