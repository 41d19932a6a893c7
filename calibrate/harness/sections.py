"""Harness sections: each runs one sweep of :class:`~.plan.SweepPlan` on a :class:`~.device.Device`
and returns the rows of one profile table (see :data:`warmsim.sim.costprofile.profile.TABLES`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warmsim.calibrate.harness.device import INTERFERENCE_SCENARIOS, PROCESS_PHASES, VMM_OPS, Device
from warmsim.calibrate.harness.plan import SweepPlan
from warmsim.sim.catalog import get_shape
from warmsim.sim.costprofile.assumptions import Assumptions
from warmsim.sim.costprofile.shapes import full_dims_row, llama_tensor_bytes, shard_dims

Rows = list[dict[str, Any]]

#: (direction, memory) pairs the copy section sweeps.
COPY_KINDS = (("h2d", "pinned"), ("h2d", "pageable"), ("d2h", "pinned"), ("d2h", "pageable"), ("h2h", "pageable"))


def _reps(values: list[float], **cols: Any) -> Rows:
    return [dict(cols, seconds=float(s), rep=i) for i, s in enumerate(values)]


def copy_section(dev: Device, plan: SweepPlan) -> Rows:
    """Copies by size and kind; plus one ``host_pin`` time per size is returned by :func:`pin_rows`."""
    rows: Rows = []
    for direction, memory in COPY_KINDS:
        for n in plan.copy_sizes:
            rows += _reps(dev.copy_s(direction, memory, n, plan.reps), direction=direction, memory=memory, bytes=n)
    return rows


def alloc_section(dev: Device, plan: SweepPlan) -> Rows:
    """cudaMalloc/cudaFree by size and count, and pinned host allocation by size."""
    rows: Rows = []
    for (op, size, count), secs in sorted(dev.alloc_s(list(plan.alloc_points), plan.reps).items()):
        rows += _reps(secs, op=op, size_bytes=size, count=count)
    for n in plan.copy_sizes:
        rows.append({"op": "host_pin", "size_bytes": n, "count": 1, "seconds": float(dev.host_pin_s(n)), "rep": 0})
    return rows


def vmm_section(dev: Device, plan: SweepPlan) -> Rows:
    """Every VMM op by total size and chunk size."""
    rows: Rows = []
    for total in plan.vmm_totals:
        for chunk in plan.vmm_chunks:
            if chunk > total:
                continue
            res = dev.vmm_s(total, chunk, plan.reps)
            for op in VMM_OPS:
                rows += _reps(res[op], op=op, total_bytes=total, chunk_bytes=chunk)
    return rows


def process_section(dev: Device, plan: SweepPlan) -> Rows:
    """Fresh-process phases."""
    res = dev.process_s(plan.process_reps)
    return [r for ph in PROCESS_PHASES for r in _reps(res[ph], phase=ph)]


def prefill_section(dev: Device, plan: SweepPlan) -> Rows:
    """Prefill of a few layers of each shard by prompt length and batch."""
    rows: Rows = []
    for name, tp in plan.compute_models:
        shape = get_shape(name)
        dims = shard_dims(shape, tp)
        for batch in plan.prefill_batches:
            for tokens in plan.prefill_tokens:
                if tokens * batch > plan.prefill_max_tokens:
                    continue
                secs = dev.prefill_s(dims, plan.compute_layers, tokens, batch, plan.reps)
                rows += _reps(secs, **full_dims_row(shape, tp), layers=plan.compute_layers, tokens=tokens, batch=batch)
    return rows


def decode_section(dev: Device, plan: SweepPlan) -> Rows:
    """Decode step of a few layers by batch and context, and the LM head by batch."""
    rows: Rows = []
    for name, tp in plan.compute_models:
        shape = get_shape(name)
        dims = shard_dims(shape, tp)
        base = full_dims_row(shape, tp)
        for batch in plan.decode_batches:
            for ctx in plan.decode_contexts:
                if batch * ctx > plan.decode_max_kv_tokens:
                    continue
                secs = dev.decode_s(dims, plan.compute_layers, batch, ctx, plan.reps)
                rows += _reps(secs, **base, part="layers", layers=plan.compute_layers, batch=batch, context=ctx)
            rows += _reps(dev.head_s(dims, batch, plan.reps), **base, part="head", layers=0, batch=batch, context=0)
    return rows


def weight_load_section(dev: Device, plan: SweepPlan) -> Rows:
    """Tensor-by-tensor loads of a partial Llama model from pinned/pageable memory, fresh/preallocated."""
    rows: Rows = []
    for layers in plan.load_layers:
        tensors = llama_tensor_bytes(get_shape(plan.load_model), layers)
        for source in ("host_pinned", "host_pageable"):
            for buffers in ("fresh", "preallocated"):
                rows += _reps(dev.weight_load_s(source, buffers, tensors, plan.reps), source=source,
                              buffers=buffers, tensors=len(tensors), bytes=sum(tensors))
    return rows


def disk_section(dev: Device, plan: SweepPlan) -> Rows:
    """A safetensors file loaded to the GPU cold (page cache dropped if allowed) and warm."""
    rows: Rows = []
    for layers in plan.disk_layers:
        tensors = llama_tensor_bytes(get_shape(plan.load_model), layers)
        for (cache, dropped), secs in sorted(dev.disk_s(tensors, plan.reps).items()):
            rows += _reps(secs, cache=cache, dropped=dropped, bytes=sum(tensors))
    return rows


def interference_section(dev: Device, plan: SweepPlan) -> Rows:
    """Compute alone and beside a background copy, copy alone and beside compute, two copies."""
    dims = shard_dims(get_shape(plan.interference_model), 1)
    rows: Rows = []
    for sc in INTERFERENCE_SCENARIOS:
        nbytes = 0 if sc.startswith(("prefill", "decode")) else plan.interference_copy_bytes
        rows += _reps(dev.interference_s(sc, dims, plan.compute_layers, plan.interference_copy_bytes, plan.reps),
                      scenario=sc, bytes=nbytes)
    return rows


def assumed_section(dev: Device, plan: SweepPlan, assumptions: Assumptions | None = None) -> Rows:
    """The unmeasurable parameters (defaults of :class:`Assumptions` unless given)."""
    return (assumptions or Assumptions()).rows()


#: Section name -> function, in run order (names match ``profile.SECTION_TABLES``).
SECTIONS: dict[str, Callable[[Device, SweepPlan], Rows]] = {
    "copy": copy_section, "alloc": alloc_section, "vmm": vmm_section, "process": process_section,
    "prefill": prefill_section, "decode": decode_section, "weight_load": weight_load_section,
    "disk": disk_section, "interference": interference_section, "assumed": assumed_section,
}
