"""The calibration profile format: a directory of tidy CSV tables plus ``meta.json``.

One row per measurement (every repetition is its own row, so spreads stay visible); the fitting
code (:mod:`warmsim.sim.costprofile.fit`) takes medians. The same format holds measured profiles (written by the
harness on a GPU) and the analytic one (written by :mod:`warmsim.calibrate.analytic`, ``measured: false``).
The full specification is in ``docs/calibration.md``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmsim.sim.errors import UserError

#: Version of the profile format (bumped when a table's columns change).
FORMAT_VERSION = 1

_SHAPE_COLS = (("shape", str), ("hidden", int), ("heads", int), ("kv_heads", int), ("head_dim", int),
               ("intermediate", int), ("vocab", int), ("tp", int))

#: Every table: its file stem and its columns with their types, in file order.
TABLES: dict[str, tuple[tuple[str, type], ...]] = {
    # host<->GPU and host<->host copies: direction h2d|d2h|h2h, memory pinned|pageable
    "copy": (("direction", str), ("memory", str), ("bytes", int), ("seconds", float), ("rep", int)),
    # cudaMalloc / cudaFree of `count` buffers of `size_bytes` each (seconds for all of them), and
    # host_pin: allocating `size_bytes` of pinned host memory (count 1)
    "alloc": (("op", str), ("size_bytes", int), ("count", int), ("seconds", float), ("rep", int)),
    # CUDA VMM driver calls over `total_bytes` in chunks of `chunk_bytes` (seconds for all chunks)
    "vmm": (("op", str), ("total_bytes", int), ("chunk_bytes", int), ("seconds", float), ("rep", int)),
    # fresh-process phases: python, import_torch, cuda_context, first_gemm
    "process": (("phase", str), ("seconds", float), ("rep", int)),
    # prefill of `layers` transformer layers of one TP shard; tokens per sequence x batch sequences
    "prefill": _SHAPE_COLS + (("layers", int), ("tokens", int), ("batch", int), ("seconds", float),
                              ("rep", int)),
    # decode step: part=layers times `layers` layers; part=head the final norm + LM head (layers 0);
    # context = tokens already cached per sequence
    "decode": _SHAPE_COLS + (("part", str), ("layers", int), ("batch", int), ("context", int),
                             ("seconds", float), ("rep", int)),
    # scenario: prefill_alone|prefill_with_copy|decode_alone|decode_with_copy|copy_alone|
    # copy_with_compute|copy_pair; bytes = bytes copied (0 for compute-only scenarios)
    "interference": (("scenario", str), ("bytes", int), ("seconds", float), ("rep", int)),
    # safetensors file -> GPU; cache cold|warm; dropped = how the page cache was dropped (none if not)
    "disk": (("cache", str), ("dropped", str), ("bytes", int), ("seconds", float), ("rep", int)),
    # whole-model load tensor by tensor: source host_pinned|host_pageable, buffers fresh|preallocated
    "weight_load": (("source", str), ("buffers", str), ("tensors", int), ("bytes", int), ("seconds", float),
                    ("rep", int)),
    # numbers the one-GPU harness cannot measure (NVLink, NIC, serving-engine settings)
    "assumed": (("parameter", str), ("value", float), ("unit", str), ("source", str)),
}

#: Harness sections, in run order, and the table each writes.
SECTION_TABLES = {"copy": "copy", "alloc": "alloc", "vmm": "vmm", "process": "process",
                  "prefill": "prefill", "decode": "decode", "weight_load": "weight_load", "disk": "disk",
                  "interference": "interference", "assumed": "assumed"}

META_FILE = "meta.json"
#: Keys every meta.json must carry.
META_REQUIRED = ("name", "measured", "label", "format_version", "harness_version", "created", "gpu", "host",
                 "sections")


def table_path(directory: Path, table: str) -> Path:
    """Path of ``table``'s CSV inside a profile directory."""
    return Path(directory) / f"{table}.csv"


def write_table(directory: Path, table: str, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as ``table``'s CSV (columns in the schema order); returns the file path."""
    cols = [c for c, _ in TABLES[table]]
    path = table_path(directory, table)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="raise", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: _fmt(r[c]) for c in cols})
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written table
    return path


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    return v


def read_table(directory: Path, table: str) -> list[dict[str, Any]]:
    """Rows of ``table`` with typed values; ``[]`` when the file is absent.

    Raises :class:`UserError` naming the file, row and column on a malformed table.
    """
    path = table_path(directory, table)
    if not path.is_file():
        return []
    schema = TABLES[table]
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return _rows(path, csv.DictReader(f), schema)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise UserError(f"{path}: not a CSV table ({e})") from None


def _rows(path: Path, reader: csv.DictReader, schema) -> list[dict[str, Any]]:
    missing = [c for c, _ in schema if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = []
    for i, raw in enumerate(reader, start=2):
        row = {}
        for col, typ in schema:
            try:
                row[col] = typ(raw[col]) if typ is not int else int(float(raw[col]))
            except (TypeError, ValueError, OverflowError):
                raise UserError(f"{path}: row {i}, column '{col}': not a {typ.__name__}: {raw[col]!r}") from None
            if typ is float and not math.isfinite(row[col]):
                raise UserError(f"{path}: row {i}, column '{col}': not a finite number: {raw[col]!r}")
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Profile:
    """A loaded profile: its directory, ``meta.json`` contents and every table's rows."""

    path: Path
    meta: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def measured(self) -> bool:
        return bool(self.meta["measured"])

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Rows of ``table`` (empty when the section failed or was not run)."""
        return self.tables.get(table, [])


def read_meta(directory: Path) -> dict[str, Any]:
    """``meta.json`` of a profile directory, checked: UTF-8 JSON, an object, the required keys with
    the right types. Any problem is a one-line :class:`UserError` naming the file."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise UserError(f"{directory}: not a calibration profile (no {META_FILE})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON ({e})") from None
    except RecursionError:
        raise UserError(f"{path}: invalid JSON (nested too deeply)") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: must hold a JSON object with keys {', '.join(META_REQUIRED)}, "
                        f"got a {type(meta).__name__}")
    missing = [k for k in META_REQUIRED if k not in meta]
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}")
    if not isinstance(meta["measured"], bool):
        raise UserError(f"{path}: key 'measured' must be true or false")
    if not isinstance(meta["name"], str) or not meta["name"]:
        raise UserError(f"{path}: key 'name' must be a non-empty string")
    if isinstance(meta["format_version"], bool) or not isinstance(meta["format_version"], int):
        raise UserError(f"{path}: key 'format_version' must be an integer")
    if meta["format_version"] > FORMAT_VERSION:
        raise UserError(f"{path}: format_version {meta['format_version']} is newer than this warmsim reads "
                        f"({FORMAT_VERSION})")
    for key in ("gpu", "host", "sections"):
        if not isinstance(meta[key], dict):
            raise UserError(f"{path}: key '{key}' must be a JSON object")
    return meta


def provenance_counts(meta: dict[str, Any]) -> tuple[int, int]:
    """(tables wholly analytic, tables partly analytic) by meta.json's ``provenance`` map (a profile
    whose measured rows came with analytic ones, like ``h100_reference``); (0, 0) without one."""
    src = [p.get("source") for p in (meta.get("provenance") or {}).values() if isinstance(p, dict)]
    return src.count("analytic"), src.count("measured+analytic")


def external_note(meta: dict[str, Any]) -> str | None:
    """How a profile measured outside warmsim's harness (meta.json ``measured_by``) says so in reports,
    e.g. ``measured by an external script; 2 of 10 tables analytic, 5 in part``; None for any other profile."""
    if not meta.get("measured") or not meta.get("measured_by"):
        return None
    whole, part = provenance_counts(meta)
    return f"measured by an external script; {whole} of {len(TABLES)} tables analytic, {part} in part"


def write_meta(directory: Path, meta: dict[str, Any]) -> Path:
    """Write ``meta.json`` atomically."""
    path = Path(directory) / META_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load_profile(directory: Path) -> Profile:
    """Read a whole profile directory; one with no table rows at all is a :class:`UserError`."""
    directory = Path(directory)
    meta = read_meta(directory)
    tables = {t: read_table(directory, t) for t in TABLES}
    if not any(tables.values()):
        raise UserError(f"{directory}: profile has no tables (none of {', '.join(t + '.csv' for t in TABLES)} "
                        "holds a row)")
    return Profile(directory, meta, tables)
