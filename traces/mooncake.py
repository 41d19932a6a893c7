"""Mooncake-style JSON Lines traces: one request per line.

Fields: ``timestamp`` (milliseconds from trace start), ``input_length``, ``output_length`` and,
optionally, ``hash_ids`` (prefix-block hashes, :data:`HASH_BLOCK_TOKENS` tokens per block) and
``model`` (a model name, an extension for user files).

``hash_ids`` in the FAST'25 release (kvcache-ai/Mooncake ``FAST25-release/traces/``, README: "remapped
block hash"): one id per 512-token block of the prompt, ``ceil(input_length / 512)`` of them (the
last block may be partial), chained (the same id at position k means the same prompt up to the end
of block k). The engine's prefix cache reads them (:mod:`warmsim.sim.prefix_cache`).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from warmsim.sim.errors import UserError
from warmsim.sim.knobs import MAX_TOKENS
from warmsim.traces import validate

MOONCAKE_FIELDS = ("timestamp", "input_length", "output_length")
#: Prompt tokens one ``hash_ids`` entry stands for in the Mooncake FAST'25 traces (NVIDIA dynamo's
#: ``benchmarks/data_generator/README.md`` "Block Size and Hash IDs": 512; the released rows have
#: ceil(input_length / 512) ids each). User files in the same format are read the same way.
HASH_BLOCK_TOKENS = 512


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        raise UserError(f"{path.name}: file not found ({path})") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"{path.name}: line 1: cannot read the file: {exc}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def load_mooncake(path: str | Path, *, model: str | None = None, sort: bool = False) -> pd.DataFrame:
    """Load a Mooncake-style JSONL trace into the canonical request table.

    Args:
        path: ``.jsonl`` or ``.jsonl.gz`` file.
        model: model name for every row when lines have no ``model`` field (default: file stem).
        sort: sort by time instead of raising when timestamps go backwards.

    Returns:
        DataFrame with ``arrival_s`` (seconds from the first request), ``model``, ``prompt_tokens``,
        ``output_tokens`` and, when present, ``hash_ids`` (lists of ints).
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise UserError(f"{path.name}: line 1: the file has no data rows (empty file)")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            raise UserError(f"{path.name}: row {i + 1} (line {i + 1}): empty line")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path.name}: row {i + 1} (line {i + 1}): not valid JSON ({exc.msg}); truncated line?") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path.name}: row {i + 1} (line {i + 1}): want a JSON object, got {type(rec).__name__}")
        missing = [k for k in MOONCAKE_FIELDS if k not in rec]
        if missing:
            raise UserError(f"{path.name}: row {i + 1} (line {i + 1}): missing field(s) {missing}; found {sorted(rec)}")
        for k in MOONCAKE_FIELDS:
            if isinstance(rec[k], bool) or not isinstance(rec[k], (int, float)):
                raise UserError(f"{path.name}: row {i + 1} (line {i + 1}): {k} is not a number: {rec[k]!r}")
        records.append(rec)
    raw = pd.DataFrame.from_records(records)
    ts = validate.numeric_column(raw, "timestamp", path, integer=False, min_value=None, header_lines=0) / 1000.0
    prompt = validate.numeric_column(raw, "input_length", path, max_value=MAX_TOKENS, header_lines=0)
    output = validate.numeric_column(raw, "output_length", path, max_value=MAX_TOKENS, header_lines=0)
    validate.check_span(ts, path, "timestamp", header_lines=0)
    order = validate.check_sorted(ts, path, "timestamp", sort=sort, header_lines=0)
    t0 = ts.min()
    if "model" in raw.columns:
        names = raw["model"].to_numpy(object)
    else:
        names = np.full(len(raw), model or path.name.removesuffix(".gz").removesuffix(".jsonl"), dtype=object)
    df = pd.DataFrame(
        {
            "arrival_s": ts[order] - t0,
            "model": names[order],
            "prompt_tokens": prompt[order].astype(np.int64),
            "output_tokens": output[order].astype(np.int64),
        }
    )
    if "hash_ids" in raw.columns:
        ids = raw["hash_ids"].to_numpy(object)
        for i, v in enumerate(ids):
            if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v):
                raise UserError(f"{path.name}: row {i + 1} (line {i + 1}): hash_ids must be a list of integers >= 0, "
                                f"got {str(v)[:60]}")
        df["hash_ids"] = ids[order]
        df.attrs["hash_block_tokens"] = HASH_BLOCK_TOKENS
    df.attrs.update(start_time=float(t0), source=str(path),
                    ignored_columns=[str(c) for c in raw.columns if c not in {*MOONCAKE_FIELDS, "model", "hash_ids"}])
    return df
