"""Azure LLM inference traces: the 2023 per-request files and the 2024 week of 10-second counts.

* 2023 (Splitwise): columns ``TIMESTAMP, ContextTokens, GeneratedTokens``; one row per request.
* 2024 (DynamoLLM, derived by a third party): columns ``Time, TIMESTAMP`` where ``TIMESTAMP`` is the
  number of requests whose arrival rounds to the 10-second label ``Time`` (UTC). A bin labelled ``t``
  therefore covers ``[t - 5 s, t + 5 s)``; the first and last bins are half-width (clipped to the
  trace span). There are no token lengths: callers draw them from the 2023 file of the same service.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_TOKENS
from warmsim.traces import validate
from warmsim.traces.tokens import sample_pairs

AZURE2023_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
AZURE2024_COLUMNS = ("Time", "TIMESTAMP")


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """Read a (possibly gzipped) CSV with a header as strings; parse problems become UserError."""
    name = Path(path).name
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True)
    except FileNotFoundError:
        raise UserError(f"{name}: file not found ({path})") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{name}: row 1: the file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:  # e.g. "Expected 3 fields in line 7, saw 4"
        m = re.search(r"line (\d+)", str(exc))
        loc = f"row {int(m.group(1)) - 1} (line {m.group(1)})" if m else "row ?"
        raise UserError(f"{name}: {loc}: malformed CSV: {str(exc).strip()}") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"{name}: row 1: cannot read the file: {exc}") from None


def _times(raw: pd.Series, path: str | Path, col: str) -> pd.Series:
    """Parse timestamps (ISO 8601, any fraction length); raise at the first unparsable row."""
    parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{validate.where(path, i)}: {col} is not a timestamp: {raw.iloc[i]!r}")
    return parsed


def load_azure2023(path: str | Path, *, model: str | None = None, sort: bool = False) -> pd.DataFrame:
    """Load an Azure-2023-style per-request CSV into the canonical request table.

    Args:
        path: CSV (or .csv.gz) with header ``TIMESTAMP,ContextTokens,GeneratedTokens``. ``TIMESTAMP``
            is a date-time (no time zone) or a number of seconds. An optional ``model`` column names
            each request's model; otherwise every row gets ``model``.
        model: service name for all rows when the file has no ``model`` column (default: file stem).
        sort: sort rows by time instead of raising when timestamps go backwards.

    Returns:
        DataFrame with ``arrival_s`` (seconds from the first request), ``model``, ``prompt_tokens``,
        ``output_tokens``; ``attrs["start_time"]`` holds the first timestamp.
    """
    raw = read_csv_text(path)
    validate.require_columns(list(raw.columns), AZURE2023_COLUMNS, path)
    validate.require_nonempty(raw, path)
    numeric = pd.to_numeric(raw["TIMESTAMP"], errors="coerce")
    if numeric.notna().all():
        secs = validate.numeric_column(raw, "TIMESTAMP", path, integer=False, min_value=None)  # inf is no time
        start = None
    else:
        ts = _times(raw["TIMESTAMP"], path, "TIMESTAMP")
        start = ts.iloc[0]
        secs = (ts - start).dt.total_seconds().to_numpy()
    prompt = validate.numeric_column(raw, "ContextTokens", path, max_value=MAX_TOKENS)
    output = validate.numeric_column(raw, "GeneratedTokens", path, max_value=MAX_TOKENS)
    validate.check_span(secs, path, "TIMESTAMP")
    order = validate.check_sorted(secs, path, "TIMESTAMP", sort=sort)
    if "model" in raw.columns:
        names = raw["model"].fillna("").to_numpy(object)
        empty = names == ""
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise UserError(f"{validate.where(path, i)}: model is empty")
    else:
        names = np.full(len(raw), model or _stem(path), dtype=object)
    t0 = secs[order].min()
    df = pd.DataFrame(
        {
            "arrival_s": secs[order] - t0,
            "model": names[order],
            "prompt_tokens": prompt[order].astype(np.int64),
            "output_tokens": output[order].astype(np.int64),
        }
    )
    df.attrs["start_time"] = start if start is not None else float(t0)
    df.attrs["source"] = str(path)
    used = {*AZURE2023_COLUMNS, "model"}
    df.attrs["ignored_columns"] = [str(c) for c in raw.columns if c not in used]
    return df


def load_azure2024_counts(path: str | Path) -> pd.DataFrame:
    """Load a 2024 10-second count file.

    Returns:
        DataFrame with ``bin_s`` (label, seconds from the first label), ``lo_s``/``hi_s`` (the interval
        the bin counts, clipped to the trace span) and ``count``; ``attrs["start_time"]`` is the first
        label (UTC), ``attrs["bin_s"]`` the bin width and ``attrs["span_s"]`` the trace span.
    """
    raw = read_csv_text(path)
    validate.require_columns(list(raw.columns), AZURE2024_COLUMNS, path)
    validate.require_nonempty(raw, path)
    ts = _times(raw["Time"], path, "Time")
    counts = validate.numeric_column(raw, "TIMESTAMP", path).astype(np.int64)
    start = ts.iloc[0]
    secs = (ts - start).dt.total_seconds().to_numpy()
    validate.check_sorted(secs, path, "Time", sort=False)
    if len(secs) < 2:
        raise UserError(f"{validate.where(path, 0)}: need at least 2 bins to know the bin width")
    steps = np.diff(secs)
    width = float(steps[0])
    irregular = steps != width
    if width <= 0 or irregular.any():
        i = int(np.flatnonzero(irregular)[0]) + 1 if irregular.any() else 1
        raise UserError(f"{validate.where(path, i)}: Time must advance by one bin width ({width:g} s) per row")
    span = float(secs[-1])
    df = pd.DataFrame(
        {
            "bin_s": secs,
            "lo_s": np.clip(secs - width / 2, 0.0, span),
            "hi_s": np.clip(secs + width / 2, 0.0, span),
            "count": counts,
        }
    )
    df.attrs.update(start_time=start, bin_s=width, span_s=span, source=str(path))
    return df


def bins_in_window(counts: pd.DataFrame, start_s: float, end_s: float) -> pd.DataFrame:
    """The bins whose interval overlaps ``[start_s, end_s)``."""
    keep = (counts["hi_s"].to_numpy() > start_s) & (counts["lo_s"].to_numpy() < end_s)
    return counts.loc[keep]


def arrivals_in_bins(
    lo: np.ndarray, hi: np.ndarray, n: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Place ``n[i]`` arrivals uniformly in ``[lo[i], hi[i])`` for each bin; return them sorted."""
    n = np.asarray(n, dtype=np.int64)
    base = np.repeat(lo, n)
    width = np.repeat(hi - lo, n)
    return np.sort(base + rng.random(base.shape[0]) * width)


def requests_from_counts(
    counts: pd.DataFrame,
    start_s: float,
    end_s: float,
    rng: np.random.Generator,
    tokens: pd.DataFrame,
    model: str,
) -> pd.DataFrame:
    """Requests of the window ``[start_s, end_s)`` of a count trace, as a canonical request table.

    Each bin's count is spread uniformly over its interval (only bins overlapping the window are
    touched); arrivals outside the window are cut. Token lengths are (prompt, output) pairs drawn
    uniformly from ``tokens`` (the 2023 file of the same service).
    """
    b = bins_in_window(counts, start_s, end_s)
    t = arrivals_in_bins(b["lo_s"].to_numpy(), b["hi_s"].to_numpy(), b["count"].to_numpy(), rng)
    t = t[(t >= start_s) & (t < end_s)]
    prompt, output = sample_pairs(tokens, t.shape[0], rng)
    df = pd.DataFrame({"arrival_s": t, "model": model, "prompt_tokens": prompt, "output_tokens": output})
    df.attrs.update(counts.attrs)
    return df


def _stem(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".gz", ".csv", ".jsonl"):
        name = name.removesuffix(suffix)
    return name
