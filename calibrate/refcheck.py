"""Profiles against the real H100's measurements, figure by figure (``warmsim calibrate --vs-reference``).

Each :class:`Figure` is one number of ``calibrate/reference_data`` together with the same quantity as
a cost model charges it. The table gives every profile's value and its error against the
measurement: ``model / measured - 1`` for times and bandwidths, and the difference in percentage
points for slowdown fractions. The ``h100_reference`` column shows how far that profile's own fits
are from the raw numbers. The analytic columns show how far their assumptions are.

Prefill and decode compare the layer stack alone: the measured stack had no LM head, so each
profile's head cost (:meth:`ModelCompute.head_s`) is taken out of its prefill and decode step.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from warmsim.calibrate.reference import (
    GIB,
    INTERFERENCE_COPY_BYTES,
    MANY_ALLOC,
    MIB,
    SHAPES,
    Measurements,
    load_measurements,
)
from warmsim.sim.catalog import get_shape
from warmsim.sim.costmodel import ProfileCostModel
from warmsim.sim.models import ServedModel

#: Prompt lengths and decode points of the table (all measured at batch 1 / dense KV).
PREFILL_TOKENS = (128, 512, 1024, 2048, 4096)
DECODE_POINTS = ((1, 512), (8, 512), (32, 512), (128, 512), (1, 2048), (32, 2048))


@dataclass(frozen=True)
class Figure:
    """One measured number and how to get the same quantity from a cost model.

    ``kind``: ``rel`` (error = model / measured - 1) or ``pp`` (a fraction; error = difference)."""

    group: str
    name: str
    unit: str
    measured: float
    model: Callable[[ProfileCostModel], float]
    kind: str = "rel"

    def error(self, value: float) -> float:
        return value / self.measured - 1.0 if self.kind == "rel" else value - self.measured


def _served(json_model: str) -> ServedModel:
    name = SHAPES[json_model]
    return ServedModel(name, get_shape(name), 1)


def _layers_prefill(c: ProfileCostModel, model: ServedModel, tokens: int, seqs: int) -> float:
    return c.prefill_s(model, tokens, seqs) - c.model_compute(model).head_s(seqs)


def _layers_decode(c: ProfileCostModel, model: ServedModel, batch: int, context: int) -> float:
    return c.decode_coeffs(model).step_s(batch, batch * context) - c.model_compute(model).head_s(batch)


def _copy_gbps(kind: tuple[str, str], nbytes: int) -> Callable[[ProfileCostModel], float]:
    return lambda c: nbytes / c.fitted.copies[kind].seconds(nbytes) / 1e9


def _load_s(model: ServedModel, fresh: bool) -> Callable[[ProfileCostModel], float]:
    """A tensor-by-tensor load from pinned memory as the simulator charges it alone on a node:
    bytes over the pinned link, plus the load overhead, plus cudaMalloc of fresh buffers."""
    def f(c: ProfileCostModel) -> float:
        n = model.shard_bytes
        t = n / c.link_bandwidth("pcie_h2d_pinned") + c.load_overhead_s("host_pinned", n)
        return t + (c.alloc_s(n) if fresh else 0.0)
    return f


def figures(m: Measurements | None = None) -> list[Figure]:
    """Every figure of the comparison table, in order."""
    m = m or load_measurements()
    ref, intf = m.reference, m.interference
    out: list[Figure] = []
    runs = ref["ctx"]["runs"]
    for phase, key, what in (("import_torch", "import_torch_s", "import torch"),
                             ("cuda_context", "cuda_context_s", "CUDA context"),
                             ("first_gemm", "first_gemm_s", "first GEMM")):
        out.append(Figure("process start", what, "s", statistics.median(r[key] for r in runs),
                          lambda c, ph=phase: c.fitted.process_phases[ph]))
    copies = {(c["dir"], c["pinned"], c["mb"]): c for c in ref["h2d"]["copies"]}
    for pinned, memory in ((True, "pinned"), (False, "pageable")):
        for mb in (64, 4096):
            c = copies[("h2d", pinned, mb)]
            out.append(Figure("H2D copy", f"{memory}, {mb} MiB", "GB/s", c["gb_per_s"],
                              _copy_gbps(("h2d", memory), mb * MIB)))
    sizes = {r["mb"]: r for r in ref["alloc"]["by_size"]}
    size, count = MANY_ALLOC
    out.append(Figure("cudaMalloc", f"per call, {count} x {size // MIB} MiB", "s",
                      ref["alloc"]["many_64mb_x200"]["malloc_s"] / count, lambda c: c.fitted.malloc.per_call_s(size)))
    for mb in (1024, 16384):
        out.append(Figure("cudaMalloc", f"one {mb // 1024} GiB buffer", "s", sizes[mb]["malloc_s"],
                          lambda c, mb=mb: c.fitted.malloc.per_call_s(mb * MIB)))
    for r in ref["vmm"]["runs"]:
        if r["chunk_mb"] == 2:
            total = r["total_gib"] * GIB
            out.append(Figure("VMM (2 MiB chunks)", f"map kept handles, {r['total_gib']} GiB", "s",
                              r["remap_existing_s"], lambda c, n=total: c.vmm_map_s(n)))
            out.append(Figure("VMM (2 MiB chunks)", f"unmap, {r['total_gib']} GiB", "s",
                              r["unmap_s"], lambda c, n=total: c.vmm_unmap_s(n)))
    for r in ref["load"]["runs"]:
        model = _served(r["model"])
        out.append(Figure("load from pinned memory", f"{model.name}, preallocated buffers", "s", r["prealloc_copy_s"],
                          _load_s(model, fresh=False)))
        out.append(Figure("load from pinned memory", f"{model.name}, fresh buffers", "s", r["fresh_alloc_plus_copy_s"],
                          _load_s(model, fresh=True)))
    for r in ref["prefill"]["runs"]:
        model, b, t = _served(r["model"]), r["batch"], r["prompt_tokens"]
        if b == 1 and t not in PREFILL_TOKENS:
            continue
        what = f"{model.name}, {t} tokens" if b == 1 else f"{model.name}, {b} x {t} tokens (not fitted)"
        out.append(Figure("prefill, layer stack", what, "s", r["prefill_s"],
                          lambda c, mo=model, n=t * b, s=b: _layers_prefill(c, mo, n, s)))
    for r in ref["decode"]["runs"]:
        if (r["batch"], r["context"]) in DECODE_POINTS:
            model = _served(r["model"])
            out.append(Figure("decode step, layer stack", f"{model.name}, batch {r['batch']}, context {r['context']}",
                              "s", r["step_s"], lambda c, mo=model, b=r["batch"], x=r["context"]: _layers_decode(c, mo, b, x)))
    comp = lambda c: c.interference().compute_slowdown  # noqa: E731
    copy = lambda c: c.interference().copy_slowdown  # noqa: E731
    for key, what in (("prefill1024", "prefill 1024 tokens"), ("prefill4096", "prefill 4096 tokens"),
                      ("decode_b32_c512", "decode batch 32, context 512")):
        s = intf[key]
        out.append(Figure("interference", f"{what}, slower during a copy", "fraction",
                          s["during_copy_median_s"] / s["alone_s"] - 1.0, comp, "pp"))
    alone = intf["copy_13gib_alone_s"]
    for key, what in (("prefill1024", "prefill 1024"), ("prefill4096", "prefill 4096"),
                      ("decode_b32_c512", "decode b32 c512")):
        out.append(Figure("interference", f"{INTERFERENCE_COPY_BYTES // GIB} GiB copy, slower during {what}", "fraction",
                          1.0 - alone / intf[key]["copy_time_with_compute_s"], copy, "pp"))
    return out


def _fmt(v: float, unit: str) -> str:
    if unit == "fraction":
        return f"{v:.1%}"
    return f"{v * 1e3:.4g}" if unit == "s" else f"{v:.3g}"  # seconds are shown in ms


def _fmt_err(f: Figure, value: float) -> str:
    e = f.error(value)
    return f"{e * 100:+.1f} pp" if f.kind == "pp" else f"{e:+.0%}"


def table(costs: list[ProfileCostModel], figs: list[Figure] | None = None) -> str:
    """A Markdown table: figure, measured value, then each profile's value and error."""
    figs = figs if figs is not None else figures()
    head = "| group | figure | measured | " + " | ".join(f"`{c.name}` | err" for c in costs) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(costs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolation and scaling notes belong to estimate, not to this table
        for f in figs:
            unit = {"s": " (ms)", "GB/s": " (GB/s)"}.get(f.unit, "")
            cells = [f.group, f.name + unit, _fmt(f.measured, f.unit)]
            for c in costs:
                v = f.model(c)
                cells += [_fmt(v, f.unit), _fmt_err(f, v)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
