"""The ``h100_reference`` profile: one real H100's measurements, and the eager analytic profile for the rest.

The measurements are two JSON files written on 2026-11-27 by a standalone torch script, **not** warmsim's
harness, on one NVIDIA H100 80GB HBM3 (host link PCIe Gen5 x16). They ship in
``calibrate/reference_data/`` with their provenance. :func:`build` turns every number they cover into rows
of the profile tables. What they do not cover comes from ``h100_eager_analytic``, built afresh by
:func:`warmsim.calibrate.analytic.build`, so that a change to the analytic assumptions regenerates this
profile consistently. That is the disk and ``assumed.csv`` tables, shards other than Llama-2-7B/13B at
TP 1, the 13B decode step, the LM head, host-to-host copies, pageable weight loads and the interpreter
start. ``meta.json`` says, table by table, which rows are measured and which are analytic
(``provenance``).

Regenerate with ``python -m warmsim.calibrate.reference [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmsim.calibrate import analytic
from warmsim.calibrate.harness.device import PROCESS_PHASES, VMM_OPS
from warmsim.calibrate.harness.plan import FULL
from warmsim.calibrate.harness.sections import COPY_KINDS, weight_load_section
from warmsim.sim.catalog import get_shape
from warmsim.sim.costprofile.fit import fit_bandwidth
from warmsim.sim.costprofile.profile import (
    FORMAT_VERSION,
    SECTION_TABLES,
    TABLES,
    load_profile,
    provenance_counts,
    write_meta,
    write_table,
)
from warmsim.sim.costprofile.shapes import dims_from_row, full_dims_row, llama_tensor_bytes, shard_dims
from warmsim.sim.errors import UserError

MIB = 1 << 20
GIB = 1 << 30

#: Where the measurements ship, and their files.
DATA_DIR = Path(__file__).resolve().parent / "reference_data"
REFERENCE_JSON = "h100-reference-2026-11-27.json"
INTERFERENCE_JSON = "h100-interference-2026-11-27.json"
PROFILE_NAME = "h100_reference"
MEASURED_ON = "2026-11-27"
#: meta.json's ``measured_by``: who measured, in one line.
MEASURED_BY = "external standalone script (shared/data/gpu, 2026-11-27), not warmsim's harness"
#: The JSON's model names and the catalog shapes they have (the load section's byte counts are these
#: shapes' ``weight_bytes`` exactly: 13,476,831,232 and 26,031,728,640).
SHAPES = {"llama-7b": "llama-2-7b", "llama-13b": "llama-2-13b"}
#: ``alloc.many_64mb_x200``: 200 buffers of 64 MiB allocated one by one, timed together.
MANY_ALLOC = (64 * MIB, 200)
#: The interference file's 13 GiB pinned copy (``pin_13gib_s``, ``copy_13gib_alone_s``, ...).
INTERFERENCE_COPY_BYTES = 13 * GIB
#: The compute the interference table is taken from: the harness's scenarios time a 1024-token
#: prefill and a decode step beside the copy, and the copy beside prefill (harness/torch_device.py).
INTERFERENCE_PREFILL = "prefill1024"
INTERFERENCE_DECODE = "decode_b32_c512"
#: JSON vmm keys for each VMM op of the table (``remap`` = map + set access of kept handles).
VMM_KEYS = {"create": "create_s", "map": "map_s", "set_access": "set_access_s", "unmap": "unmap_s",
            "release": "release_s", "remap": "remap_existing_s"}
#: JSON ctx keys for the process phases it measured (``python``, the interpreter start, it did not).
PROCESS_KEYS = {"import_torch": "import_torch_s", "cuda_context": "cuda_context_s", "first_gemm": "first_gemm_s"}
#: The analytic profile the unmeasured rows come from.
BASE = analytic.EAGER_PROFILE_NAME

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Measurements:
    """The two JSON files: ``reference`` (env, ctx, h2d, alloc, vmm, load, prefill, decode, ttft_e2e)
    and ``interference``; ``sha256`` of each file by name."""

    reference: dict[str, Any]
    interference: dict[str, Any]
    sha256: dict[str, str]


def load_measurements(directory: Path = DATA_DIR) -> Measurements:
    """Read the shipped measurement files (a :class:`UserError` naming the file if one is unreadable)."""
    data, sums = {}, {}
    for name in (REFERENCE_JSON, INTERFERENCE_JSON):
        path = Path(directory) / name
        try:
            raw = path.read_bytes()
            data[name] = json.loads(raw)
        except OSError as e:
            raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{path}: not JSON ({e})") from None
        sums[name] = hashlib.sha256(raw).hexdigest()
    return Measurements(data[REFERENCE_JSON], data[INTERFERENCE_JSON], sums)


@dataclass(frozen=True)
class Table:
    """One table's rows and where they came from (``measured`` / ``analytic`` describe the rows of
    each origin; ``left_out``: measured numbers not turned into rows, and why)."""

    rows: Rows
    measured: str = ""
    analytic: str = ""
    left_out: str = ""

    def provenance(self) -> dict[str, str]:
        source = "measured+analytic" if self.measured and self.analytic else "measured" if self.measured else "analytic"
        out = {"source": source}
        out.update({k: v for k, v in (("measured", self.measured), ("analytic", self.analytic),
                                      ("left_out", self.left_out)) if v})
        return out


def _shape(model: str):
    if model not in SHAPES:
        raise UserError(f"{REFERENCE_JSON}: unknown model '{model}' (known: {', '.join(SHAPES)})")
    return get_shape(SHAPES[model])


def copy_table(m: Measurements, base: Rows) -> Table:
    """h2d/d2h, pinned/pageable by size (``h2d.copies``); host-to-host from the base."""
    rows = [{"direction": c["dir"], "memory": "pinned" if c["pinned"] else "pageable", "bytes": int(c["mb"]) * MIB,
             "seconds": float(c["median_s"]), "rep": 0} for c in m.reference["h2d"]["copies"]]
    rows.sort(key=lambda r: (COPY_KINDS.index((r["direction"], r["memory"])), r["bytes"]))
    kinds = {(r["direction"], r["memory"]) for r in rows}
    rest = [r for r in base if (r["direction"], r["memory"]) not in kinds]
    return Table(rows + rest,
                 measured="h2d and d2h, pinned and pageable, 1 MiB..4 GiB: h2d.copies median_s (one row per size)",
                 analytic=f"h2h (host memory bandwidth, not measured): {BASE}" if rest else "")


def alloc_table(m: Measurements, base: Rows) -> Table:
    """cudaMalloc/cudaFree one buffer by size and 200 x 64 MiB; pinned host allocation of 13 GiB."""
    a = m.reference["alloc"]
    rows: Rows = []
    for r in a["by_size"]:
        for op in ("malloc", "free"):
            rows.append({"op": op, "size_bytes": int(r["mb"]) * MIB, "count": 1, "seconds": float(r[f"{op}_s"]), "rep": 0})
    size, count = MANY_ALLOC
    for op in ("malloc", "free"):
        rows.append({"op": op, "size_bytes": size, "count": count, "seconds": float(a["many_64mb_x200"][f"{op}_s"]),
                     "rep": 0})
    rows.append({"op": "host_pin", "size_bytes": INTERFERENCE_COPY_BYTES, "count": 1,
                 "seconds": float(m.interference["pin_13gib_s"]), "rep": 0})
    rows.sort(key=lambda r: (r["op"], r["size_bytes"], r["count"]))
    return Table(rows, measured="malloc/free of one buffer of 2 MiB..64 GiB (alloc.by_size) and of 200 x 64 MiB "
                                "(alloc.many_64mb_x200), caching allocator off; host_pin: pinning 13 GiB "
                                f"({INTERFERENCE_JSON} pin_13gib_s)",
                 left_out="h2d.pin_alloc (1 GB in 84 us, 4 GB in 7.6 us: far too fast to be page-locking, "
                          "presumably torch's pinned-memory cache handing back a buffer); "
                          "alloc.empty_cache_after_20gib_s (no table has an empty_cache row)")


def vmm_table(m: Measurements, base: Rows) -> Table:
    """Every VMM op by total and chunk size."""
    rows: Rows = []
    for r in m.reference["vmm"]["runs"]:
        total, chunk = int(r["total_gib"]) * GIB, int(r["chunk_mb"]) * MIB
        if total // chunk != int(r["chunks"]):
            raise UserError(f"{REFERENCE_JSON}: vmm run {r['total_gib']} GiB / {r['chunk_mb']} MiB says "
                            f"{r['chunks']} chunks, not {total // chunk}")
        rows += [{"op": op, "total_bytes": total, "chunk_bytes": chunk, "seconds": float(r[VMM_KEYS[op]]), "rep": 0}
                 for op in VMM_OPS]
    return Table(rows, measured="create, map, set_access, unmap, release and remap (remap_existing_s: map + set "
                                "access of kept handles) over 1/8/32 GiB in 2/64/512 MiB chunks (vmm.runs)",
                 left_out="unmap2_s (the unmap after the remap; the harness times it but does not tabulate it either)")


def process_table(m: Measurements, base: Rows) -> Table:
    """``import torch``, CUDA context and first GEMM of three fresh processes; the interpreter start
    from the base."""
    runs = m.reference["ctx"]["runs"]
    rest = [r for r in base if r["phase"] not in PROCESS_KEYS]
    rows = rest + [{"phase": ph, "seconds": float(run[PROCESS_KEYS[ph]]), "rep": i}
                   for ph in PROCESS_PHASES if ph in PROCESS_KEYS for i, run in enumerate(runs)]
    return Table(rows, measured=f"import_torch, cuda_context, first_gemm: ctx.runs ({len(runs)} processes, one row each)",
                 analytic=f"python (interpreter start, not timed separately): {BASE}",
                 left_out="ctx.runs process_wall_s (the whole process, interpreter start and exit included)")


def _check_layer_stack(m: Measurements) -> None:
    """The prefill/decode stack holds every layer of the 7B shape: ``ttft_e2e.model_bytes_layers`` is
    exactly 32 layers' weight matrices (without the RMSNorm vectors)."""
    shape = get_shape(SHAPES["llama-7b"])
    expect = shape.layers * (shard_dims(shape, 1).layer_bytes - 2 * shape.hidden * shape.dtype_bytes)
    got = int(m.reference["ttft_e2e"]["model_bytes_layers"])
    if got != expect:
        raise UserError(f"{REFERENCE_JSON}: ttft_e2e.model_bytes_layers is {got}, not {shape.layers} layers of "
                        f"{shape.name} ({expect}); the layer count of the prefill/decode rows would be wrong")


def prefill_table(m: Measurements, base: Rows) -> Table:
    """Batch-1 prefill of the whole 7B and 13B layer stacks (``layers`` = the model's layer count)."""
    _check_layer_stack(m)
    rows: Rows = []
    for r in m.reference["prefill"]["runs"]:
        if int(r["batch"]) != 1:
            continue
        shape = _shape(r["model"])
        rows.append({**full_dims_row(shape, 1), "layers": shape.layers, "tokens": int(r["prompt_tokens"]), "batch": 1,
                     "seconds": float(r["prefill_s"]), "rep": 0})
    keys = {dims_from_row(r).key() for r in rows}
    rest = [r for r in base if dims_from_row(r).key() not in keys]
    return Table(rows + rest,
                 measured="llama-2-7b and llama-2-13b at TP 1, batch 1, 32..8192 tokens: prefill.runs prefill_s of the "
                          "eager layer stack (all layers; no embedding, no LM head: the cost model adds the head "
                          "from decode.csv's head rows)",
                 analytic=f"every other shard (llama-3-8b, llama-2-13b TP 2, llama-2-70b TP 2/4/8): {BASE}",
                 left_out="batch 4 and 8 (512 tokens only): one point per batch cannot make a curve over tokens; "
                          "the cost model charges a batch as its total tokens on the batch-1 curve, which these "
                          "points check (docs/calibration.md)")


def decode_table(m: Measurements, base: Rows) -> Table:
    """7B decode step of the whole layer stack by batch and context; the LM head and other shards from
    the base."""
    rows: Rows = []
    for r in m.reference["decode"]["runs"]:
        shape = _shape(r["model"])
        rows.append({**full_dims_row(shape, 1), "part": "layers", "layers": shape.layers, "batch": int(r["batch"]),
                     "context": int(r["context"]), "seconds": float(r["step_s"]), "rep": 0})
    keys = {dims_from_row(r).key() for r in rows}
    rest = [r for r in base if not (r["part"] == "layers" and dims_from_row(r).key() in keys)]
    return Table(rows + rest,
                 measured="llama-2-7b TP 1 layer stack (all 32 layers, dense KV tensors, no paging, eager): "
                          "decode.runs step_s, batch 1..128 at context 512 and 1..32 at context 2048",
                 analytic=f"the LM head rows of every shard, and every other shard's layer rows (llama-2-13b "
                          f"included): {BASE}")


def interference_table(m: Measurements, base: Rows) -> Table:
    """The harness's scenarios from the interference file (1024-token prefill; decode at batch 32 and
    context 512; the 13 GiB copy beside the prefill; two concurrent copies of half of it each)."""
    f = m.interference
    pre, dec = f[INTERFERENCE_PREFILL], f[INTERFERENCE_DECODE]
    vals = [("prefill_alone", 0, pre["alone_s"]), ("prefill_with_copy", 0, pre["during_copy_median_s"]),
            ("decode_alone", 0, dec["alone_s"]), ("decode_with_copy", 0, dec["during_copy_median_s"]),
            ("copy_alone", INTERFERENCE_COPY_BYTES, f["copy_13gib_alone_s"]),
            ("copy_with_compute", INTERFERENCE_COPY_BYTES, pre["copy_time_with_compute_s"]),
            ("copy_pair", INTERFERENCE_COPY_BYTES // 2, f["two_concurrent_copies_13gib_total_s"])]
    rows = [{"scenario": s, "bytes": b, "seconds": float(v), "rep": 0} for s, b, v in vals]
    return Table(rows, measured=f"{INTERFERENCE_JSON}: {INTERFERENCE_PREFILL} and {INTERFERENCE_DECODE} alone and "
                                "during the 13 GiB pinned copy; the copy alone and during the 1024-token prefill; "
                                "two concurrent copies of 6.5 GiB each",
                 left_out="prefill4096 (no slowdown: 0.08514 s alone, 0.08513 s during the copy); the copy during "
                          "prefill4096 (0.342 s) and during decode (0.302 s); chunked_copy (no table for chunk sizes); "
                          "each is in docs/calibration.md")


def weight_load_table(m: Measurements, base: Rows) -> Table:
    """Whole 7B and 13B models loaded tensor by tensor from pinned memory, into fresh and into
    preallocated buffers; pageable loads from the analytic device at the measured pageable bandwidth."""
    rows: Rows = []
    for r in m.reference["load"]["runs"]:
        shape = _shape(r["model"])
        if int(r["bytes"]) != sum(llama_tensor_bytes(shape, shape.layers)):
            raise UserError(f"{REFERENCE_JSON}: load run {r['model']} holds {r['bytes']} bytes, not {shape.name}'s "
                            f"{sum(llama_tensor_bytes(shape, shape.layers))}")
        for buffers, key in (("fresh", "fresh_alloc_plus_copy_s"), ("preallocated", "prealloc_copy_s")):
            rows.append({"source": "host_pinned", "buffers": buffers, "tensors": int(r["tensors"]), "bytes": int(r["bytes"]),
                         "seconds": float(r[key]), "rep": 0})
    pageable = [c for c in copy_table(m, []).rows if (c["direction"], c["memory"]) == ("h2d", "pageable")]
    bw = fit_bandwidth("copy h2d pageable", pageable).bytes_per_s
    params = dataclasses.replace(analytic.H100EagerParams(), h2d_pageable_bytes_per_s=bw)
    plan = dataclasses.replace(FULL, reps=1, process_reps=1)
    rest = [r for r in weight_load_section(analytic.AnalyticDevice(params), plan) if r["source"] == "host_pageable"]
    return Table(rows + rest,
                 measured="host_pinned, fresh (fresh_alloc_plus_copy_s) and preallocated (prealloc_copy_s): load.runs, "
                          "llama-2-7b (195 tensors, fused QKV and gate/up) and llama-2-13b (243 tensors)",
                 analytic=f"host_pageable (not measured): the analytic device of {BASE} with its pageable h2d "
                          f"bandwidth set to the measured one ({bw / 1e9:.4g} GB/s, fitted to this profile's "
                          "copy rows), so the fitted load overhead is the analytic per-load and per-tensor cost",
                 left_out="host_pin_build_s, gpu_alloc_s, flat_copy_s (no table column for them)")


def _passthrough(what: str):
    def rows(m: Measurements, base: Rows) -> Table:
        return Table(list(base), analytic=f"{what}: {BASE}")
    return rows


#: Table -> function building it from the measurements and the base profile's rows of that table.
BUILDERS = {"copy": copy_table, "alloc": alloc_table, "vmm": vmm_table, "process": process_table,
            "prefill": prefill_table, "decode": decode_table, "weight_load": weight_load_table,
            "disk": _passthrough("not measured"),
            "interference": interference_table,
            "assumed": _passthrough("NVLink, NIC and serving-engine numbers one GPU cannot measure")}


def _meta(m: Measurements, base_meta: dict[str, Any], tables: dict[str, Table]) -> dict[str, Any]:
    env = m.reference["env"]
    prov = {t: tables[t].provenance() for t in TABLES}
    n_analytic, n_mixed = provenance_counts({"provenance": prov})
    label = (f"MEASURED BY AN EXTERNAL STANDALONE SCRIPT, NOT BY warmsim calibrate: one {env['gpu']} (host link PCIe "
             f"Gen{env['pcie_gen_max']} x{env['pcie_width_max']}), {MEASURED_ON} (calibrate/reference_data); "
             f"{n_analytic} of {len(TABLES)} tables wholly and {n_mixed} in part from {BASE} (ANALYTIC), "
             "see meta.json 'provenance'")
    return {
        "name": PROFILE_NAME, "measured": True, "measured_by": MEASURED_BY, "label": label,
        "format_version": FORMAT_VERSION, "harness_version": "none (external script)", "created": MEASURED_ON,
        "plan": "external",
        "gpu": {"name": env["gpu"], "memory_bytes": int(env["mem_total_gib"] * GIB), "count": 1,
                "driver": env["driver"], "cuda": env["cuda"], "torch": env["torch"], "sm_count": env["sm_count"],
                "pcie_gen": env["pcie_gen_cur"], "pcie_gen_max": env["pcie_gen_max"],
                "pcie_width": env["pcie_width_cur"], "pcie_width_max": env["pcie_width_max"]},
        "host": {"memory_bytes": int(env["host_mem_gib"] * GIB), "cpus": env["cpu_count"]},
        "sections": {sec: {"status": "ok", "rows": len(tables[t].rows)} for sec, t in SECTION_TABLES.items()},
        "provenance": prov,
        "measurement_files": {name: {"sha256": digest} for name, digest in m.sha256.items()},
        "analytic_base": {"profile": BASE, "label": base_meta["label"],
                          "analytic_parameters": base_meta.get("analytic_parameters", {})},
    }


def build(out: Path, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """Write the ``h100_reference`` profile into ``out``; returns its meta."""
    m = load_measurements(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        analytic.build(Path(tmp) / BASE, eager=True)
        base = load_profile(Path(tmp) / BASE)
    tables = {t: BUILDERS[t](m, base.rows(t)) for t in TABLES}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for t in TABLES:
        write_table(out, t, tables[t].rows)
    meta = _meta(m, base.meta, tables)
    write_meta(out, meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    """``python -m warmsim.calibrate.reference [--out DIR]``: regenerate the shipped reference profile."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "profiles" / PROFILE_NAME)
    args = ap.parse_args(argv)
    meta = build(args.out)
    print(f"wrote {args.out} ({sum(s['rows'] for s in meta['sections'].values())} rows; {meta['label']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
