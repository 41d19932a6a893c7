"""ServeGen per-client rate series, and arrivals generated from them.

Each ``chunk-<client>-trace.csv.gz`` has no header and one row per 600-second window:
``window_start_s, rate, cv, pattern, shape, scale``; ``pattern`` is ``Gamma``, ``Weibull`` or empty
(no requests). Arrivals are generated per (client, window) the way ServeGen's generator does: draw
inter-arrival gaps from the fitted distribution (only its shape matters), rescale them so that they
fill the window exactly, and place the requests at the partial sums. Our one change: ServeGen draws
``ceil(rate * window)`` gaps and keeps the arrivals strictly inside the window (one fewer); we draw
``n + 1`` gaps for ``n`` = the target count rounded stochastically, so the expected count equals
``rate * window``. Everything is vectorised over all (client, window) rows with numpy's Generator.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.traces import validate

SERVEGEN_COLUMNS = ("window_start_s", "rate", "cv", "pattern", "shape", "scale")
SERVEGEN_PATTERNS = ("Gamma", "Weibull")
_CHUNK = re.compile(r"chunk-(\d+)-trace\.csv(\.gz)?$")


def client_files(folder: Path) -> list[tuple[int, Path]]:
    """``(client id, path)`` of every ``chunk-<id>-trace.csv[.gz]`` in ``folder``, by client id."""
    found = []
    for p in folder.iterdir():
        m = _CHUNK.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    if not found:
        raise UserError(f"{folder}: no chunk-<client>-trace.csv(.gz) files in this folder")
    return sorted(found)


def _fast_read(path, with_client: bool = False) -> pd.DataFrame | None:
    """Parse with typed columns (the common, clean case); None when the file needs the slow path."""
    names = (["client"] if with_client else []) + list(SERVEGEN_COLUMNS)
    dtype = {"window_start_s": np.float64, "rate": np.float64, "cv": np.float64, "pattern": str,
             "shape": np.float64, "scale": np.float64} | ({"client": np.int64} if with_client else {})
    try:
        df = pd.read_csv(path, header=None, names=names, keep_default_na=False,
                         na_values={c: [""] for c in names if c != "pattern"}, dtype=dtype)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError):
        return None
    numeric = df[["window_start_s", "rate", "cv", "shape", "scale"]].to_numpy()
    if len(df) == 0 or not np.isfinite(numeric).all() or (numeric < 0).any():
        return None
    if (df["window_start_s"].to_numpy() % 1 != 0).any():
        return None
    return df


def load_client(path: Path) -> pd.DataFrame:
    """One client's rate series, validated (numeric fields, known pattern, positive shape)."""
    out = _fast_read(path)
    if out is not None:
        _check_patterns(out, path)
        return out
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, na_values=[])
    except pd.errors.EmptyDataError:
        raise UserError(f"{path.name}: row 1: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise UserError(f"{path.name}: row ?: malformed CSV: {str(exc).strip()}") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path.name}: row 1: cannot read the file: {exc}") from None
    if raw.shape[1] != len(SERVEGEN_COLUMNS):
        raise UserError(f"{path.name}: row 1: want {len(SERVEGEN_COLUMNS)} columns {list(SERVEGEN_COLUMNS)}, got {raw.shape[1]}")
    raw.columns = list(SERVEGEN_COLUMNS)
    out = pd.DataFrame({"window_start_s": validate.numeric_column(raw, "window_start_s", path, header_lines=0)})
    for col in ("rate", "cv", "shape", "scale"):
        out[col] = validate.numeric_column(raw, col, path, integer=False, header_lines=0)
    out["pattern"] = raw["pattern"].to_numpy(object)
    _check_patterns(out, path)
    return out


def _check_patterns(out: pd.DataFrame, path: Path, check_order: bool = True) -> None:
    pattern = out["pattern"].to_numpy(object)
    unknown = ~np.isin(pattern, ("",) + SERVEGEN_PATTERNS)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise UserError(f"{validate.where(path, i, 0)}: pattern must be Gamma, Weibull or empty, got {pattern[i]!r}")
    active = pattern != ""
    bad_shape = active & (out["shape"].to_numpy() <= 0)
    if bad_shape.any():
        i = int(np.flatnonzero(bad_shape)[0])
        raise UserError(f"{validate.where(path, i, 0)}: shape must be > 0 for pattern {pattern[i]}")
    if check_order:
        validate.check_sorted(out["window_start_s"].to_numpy(), path, "window_start_s", sort=False, header_lines=0)


def _fast_folder(files: list[tuple[int, Path]]) -> pd.DataFrame | None:
    """All clients parsed in one pass (clean data); None if any file needs the checked path."""
    chunks = []
    try:
        for cid, path in files:
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            data = data.strip(b"\n")
            if not data:
                return None
            prefix = str(cid).encode() + b","
            chunks.append(prefix + data.replace(b"\n", b"\n" + prefix))
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    df = _fast_read(io.BytesIO(b"\n".join(chunks) + b"\n"), with_client=True)
    if df is None:
        return None
    try:
        _check_patterns(df, Path("(all files)"), check_order=False)
    except UserError:
        return None
    starts = df["window_start_s"].to_numpy()
    client = df["client"].to_numpy()
    same = client[1:] == client[:-1]
    if (np.diff(starts)[same] < 0).any():
        return None
    return df


def load_servegen(folder: str | Path) -> pd.DataFrame:
    """All clients of one ServeGen model folder, stacked.

    Returns:
        DataFrame with ``client`` plus the six trace columns, ordered by (client, window);
        ``attrs["window_s"]`` is the window length (600 s) and ``attrs["span_s"]`` the covered span.
    """
    folder = Path(folder)
    files = client_files(folder)
    table = _fast_folder(files)
    if table is None:  # something is off: re-read file by file for a message naming the file and row
        parts = []
        for cid, path in files:
            df = load_client(path)
            df.insert(0, "client", cid)
            parts.append(df)
        table = pd.concat(parts, ignore_index=True)
    starts = np.unique(table["window_start_s"].to_numpy())
    window = float(np.min(np.diff(starts))) if len(starts) > 1 else 600.0
    table.attrs.update(window_s=window, span_s=float(starts[-1] + window), source=str(folder))
    return table


def windows_in_range(table: pd.DataFrame, start_s: float, end_s: float) -> pd.DataFrame:
    """Rows whose window overlaps ``[start_s, end_s)``."""
    w = table.attrs["window_s"]
    ws = table["window_start_s"].to_numpy()
    return table.loc[(ws + w > start_s) & (ws < end_s)]


def aggregate_rate(table: pd.DataFrame) -> pd.Series:
    """Sum of client rates per window start (req/s), the model's aggregate rate series."""
    return table.groupby("window_start_s")["rate"].sum()


def generate_arrivals(
    rows: pd.DataFrame,
    rate_scale: float | np.ndarray,
    window_s: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Arrivals of every (client, window) row, vectorised.

    Args:
        rows: rows of :func:`load_servegen` (or several models' tables stacked).
        rate_scale: factor applied to each row's ``rate`` (a scalar or one value per row).
        window_s: window length in seconds.
        rng: the run's generator.

    Returns:
        ``(arrival_s, row_index)``: arrival times (in the series' clock, not sorted) and, for each,
        the position in ``rows`` it came from.
    """
    rate = rows["rate"].to_numpy(np.float64) * rate_scale
    active = (rows["pattern"].to_numpy(object) != "") & (rate > 0)
    expected = np.where(active, rate * window_s, 0.0)
    n = np.floor(expected).astype(np.int64)
    n += rng.random(n.shape[0]) < (expected - n)
    gaps_per_row = np.where(n > 0, n + 1, 0)
    total = int(gaps_per_row.sum())
    if total == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    shape = np.repeat(rows["shape"].to_numpy(np.float64), gaps_per_row)
    is_gamma = np.repeat(rows["pattern"].to_numpy(object) == "Gamma", gaps_per_row)
    gaps = np.empty(total)
    gaps[is_gamma] = rng.gamma(shape[is_gamma])
    gaps[~is_gamma] = rng.weibull(shape[~is_gamma])
    seg = np.flatnonzero(gaps_per_row)
    first = np.concatenate(([0], np.cumsum(gaps_per_row[seg])[:-1]))
    sums = np.add.reduceat(gaps, first)
    # Degenerate draws (all gaps underflow to 0) become evenly spaced arrivals.
    zero = sums <= 0
    if zero.any():
        zero_rows = np.repeat(zero, gaps_per_row[seg])
        gaps[zero_rows] = 1.0
        sums = np.add.reduceat(gaps, first)
    gaps *= np.repeat(window_s / sums, gaps_per_row[seg])
    csum = np.cumsum(gaps)
    offset = np.repeat(np.concatenate(([0.0], csum[first[1:] - 1])), gaps_per_row[seg])
    local = csum - offset
    keep = np.ones(total, dtype=bool)
    keep[first + gaps_per_row[seg] - 1] = False  # the (n+1)-th partial sum is the window's end
    row_of_gap = np.repeat(seg, gaps_per_row[seg])
    starts = rows["window_start_s"].to_numpy(np.float64)
    t = starts[row_of_gap[keep]] + np.minimum(local[keep], np.nextafter(window_s, 0))
    return t, row_of_gap[keep]
