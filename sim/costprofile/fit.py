"""Turn a :class:`~warmsim.sim.costprofile.profile.Profile` into cost curves.

* copies and disk: ``latency + bytes / bandwidth`` (least squares on medians per size);
* cudaMalloc/cudaFree and VMM ops: per-call cost linear in the buffer/chunk size;
* process start: sum of the phase medians;
* weight-load overhead: load time minus ``bytes / copy bandwidth``, linear in the tensor count;
* prefill: per-layer seconds piecewise-linear in tokens per sequence, per measured shard and batch;
* decode: per-layer ``base + per_seq * batch + per_ctx * batch * context`` (least squares) plus an
  LM-head fit linear in batch;
* interference: slowdown fractions from the with/without medians.

Raw points stay inside every fit (``LinearFit.points``, ``PiecewiseLinear.xs/ys``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from warmsim.sim.cost import Interference
from warmsim.sim.costprofile.assumptions import Assumptions
from warmsim.sim.costprofile.curves import LinearFit, PiecewiseLinear, fit_linear, medians
from warmsim.sim.costprofile.profile import Profile
from warmsim.sim.costprofile.shapes import ShardDims, dims_from_row
from warmsim.sim.errors import UserError


@dataclass(frozen=True)
class BandwidthFit:
    """``seconds = latency_s + bytes / bytes_per_s`` for one kind of transfer."""

    fit: LinearFit

    @property
    def latency_s(self) -> float:
        return self.fit.intercept

    @property
    def bytes_per_s(self) -> float:
        return 1.0 / self.fit.coef[0] if self.fit.coef[0] > 0 else math.inf

    def seconds(self, nbytes: float) -> float:
        return self.fit(nbytes)


def fit_bandwidth(label: str, rows: list[dict[str, Any]], size_col: str = "bytes") -> BandwidthFit:
    """Fit latency and bandwidth to the medians of ``rows`` per size (at least two sizes)."""
    med = medians(rows, [size_col])
    if len(med) < 2:
        raise UserError(f"{label}: needs at least two sizes to fit latency and bandwidth, has {len(med)}")
    return BandwidthFit(fit_linear(label, [[k[0]] for k in med], list(med.values())))


@dataclass(frozen=True)
class PerCallFit:
    """Per-call seconds ``a + b * size`` of an operation done once per buffer or chunk."""

    fit: LinearFit

    def per_call_s(self, size: float) -> float:
        return self.fit(size)

    def total_s(self, nbytes: float, size: float) -> float:
        """Cost of covering ``nbytes`` with calls of ``size`` bytes each."""
        if nbytes <= 0:
            return 0.0
        return math.ceil(nbytes / size) * self.per_call_s(size)


def fit_per_call(label: str, rows: list[dict[str, Any]], size_col: str, count_of) -> PerCallFit:
    """Fit per-call seconds against call size; ``count_of(row)`` gives the calls a row timed."""
    per = [dict(r, seconds=r["seconds"] / count_of(r)) for r in rows]
    med = medians(per, [size_col])
    return PerCallFit(fit_linear(label, [[k[0]] for k in med], list(med.values())))


@dataclass(frozen=True)
class ComputeData:
    """Per-layer compute fits of one measured shard."""

    dims: ShardDims
    prefill: dict[int, PiecewiseLinear]  # batch -> per-layer seconds by tokens per sequence
    decode: LinearFit | None  # per-layer seconds on (batch, batch * context)
    head: LinearFit | None  # head seconds on batch


@dataclass(frozen=True)
class FittedProfile:
    """Every fitted curve of one profile, plus its assumptions and meta."""

    name: str
    measured: bool
    meta: dict[str, Any] = field(repr=False)
    assumptions: Assumptions
    copies: dict[tuple[str, str], BandwidthFit]
    host_pin_bytes_per_s: float | None
    malloc: PerCallFit | None
    free: PerCallFit | None
    vmm: dict[str, PerCallFit]
    process_s: float | None
    process_phases: dict[str, float]
    load_per_tensor_s: dict[str, LinearFit]  # source -> overhead seconds on tensor count
    disk_cold: BandwidthFit | None
    disk_warm: BandwidthFit | None
    disk_dropped: bool
    interference: Interference
    compute: dict[tuple, ComputeData]  # ShardDims.key() -> data

    def summary(self) -> dict[str, Any]:
        """Headline numbers (bandwidths in GB/s, costs in seconds) for reports and docs."""
        s: dict[str, Any] = {"profile": self.name, "measured": self.measured}
        for (d, m), bw in self.copies.items():
            s[f"copy_{d}_{m}_GBps"] = round(bw.bytes_per_s / 1e9, 3)
        if self.disk_cold:
            s["disk_cold_GBps"] = round(self.disk_cold.bytes_per_s / 1e9, 3)
        s["process_s"] = self.process_s
        for op, f in self.vmm.items():
            s[f"vmm_{op}_per_2MiB_s"] = f.per_call_s(2 << 20)
        s["compute_slowdown"] = self.interference.compute_slowdown
        s["copy_slowdown"] = self.interference.copy_slowdown
        s["compute_shards"] = sorted(f"{k[0]}/tp{k[-1]}" for k in self.compute)
        return s


def _fit_copies(rows: list[dict]) -> dict[tuple[str, str], BandwidthFit]:
    kinds = sorted({(r["direction"], r["memory"]) for r in rows})
    return {k: fit_bandwidth(f"copy {k[0]} {k[1]}", [r for r in rows if (r["direction"], r["memory"]) == k])
            for k in kinds}


def _fit_alloc(rows: list[dict]) -> tuple[PerCallFit | None, PerCallFit | None, float | None]:
    def one(op: str) -> PerCallFit | None:
        sub = [r for r in rows if r["op"] == op]
        return fit_per_call(f"cuda {op}", sub, "size_bytes", lambda r: r["count"]) if sub else None

    pins = [r for r in rows if r["op"] == "host_pin" and r["seconds"] > 0]
    pin_bw = (sum(r["size_bytes"] for r in pins) / sum(r["seconds"] for r in pins)) if pins else None
    return one("malloc"), one("free"), pin_bw


def _fit_vmm(rows: list[dict]) -> dict[str, PerCallFit]:
    out = {}
    for op in sorted({r["op"] for r in rows}):
        sub = [r for r in rows if r["op"] == op]
        out[op] = fit_per_call(f"vmm {op}", sub, "chunk_bytes", lambda r: r["total_bytes"] // r["chunk_bytes"])
    return out


def _fit_load(rows: list[dict], copies: dict[tuple[str, str], BandwidthFit]) -> dict[str, LinearFit]:
    """Per-source overhead of preallocated tensor-by-tensor loads beyond the bytes' copy time."""
    out = {}
    for source, memory in (("host_pinned", "pinned"), ("host_pageable", "pageable")):
        sub = [r for r in rows if r["source"] == source and r["buffers"] == "preallocated"]
        bw = copies.get(("h2d", memory))
        if not sub or bw is None:
            continue
        med = medians(sub, ["tensors", "bytes"])
        xs = [[k[0]] for k in med]
        ys = [max(0.0, v - k[1] / bw.bytes_per_s) for k, v in med.items()]
        out[source] = fit_linear(f"load overhead {source}", xs, ys)
    return out


#: Filesystems held in memory: a "disk" test on them measures RAM (``meta.host.scratch_fs``).
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


def _fit_disk(rows: list[dict]) -> tuple[BandwidthFit | None, BandwidthFit | None, bool]:
    cold = [r for r in rows if r["cache"] == "cold"]
    warm = [r for r in rows if r["cache"] == "warm"]
    dropped = bool(cold) and all(r["dropped"] != "none" for r in cold)
    if cold and not dropped:
        warnings.warn("disk.csv: the page cache could not be dropped for the cold rows; the 'ssd_read' "
                      "bandwidth may be the page cache's", UserWarning, stacklevel=3)
    return (fit_bandwidth("disk cold", cold) if cold else None,
            fit_bandwidth("disk warm", warm) if warm else None, dropped)


def _fit_interference(rows: list[dict]) -> Interference:
    med = medians(rows, ["scenario"])
    m = {k[0]: v for k, v in med.items()}
    comp = [m[f"{c}_with_copy"] / m[f"{c}_alone"] - 1.0 for c in ("prefill", "decode")
            if m.get(f"{c}_alone") and f"{c}_with_copy" in m]
    copy = (1.0 - m["copy_alone"] / m["copy_with_compute"]) if m.get("copy_with_compute") and "copy_alone" in m else 0.0
    return Interference(compute_slowdown=max(0.0, sum(comp) / len(comp)) if comp else 0.0,
                        copy_slowdown=min(0.99, max(0.0, copy)))


def _fit_compute(prefill_rows: list[dict], decode_rows: list[dict]) -> dict[tuple, ComputeData]:
    keys: dict[tuple, ShardDims] = {}
    for r in prefill_rows + decode_rows:
        d = dims_from_row(r)
        keys.setdefault(d.key(), d)
    out = {}
    for key, dims in keys.items():
        label = f"{dims.shape}/tp{dims.tp}"
        pre = [dict(r, seconds=r["seconds"] / r["layers"]) for r in prefill_rows if dims_from_row(r).key() == key]
        curves = {}
        for b in sorted({r["batch"] for r in pre}):
            med = medians([r for r in pre if r["batch"] == b], ["tokens"])
            curves[b] = PiecewiseLinear.from_points(f"prefill {label} batch {b} (tokens per sequence)",
                                                    {k[0]: v for k, v in med.items()})
        dec = [r for r in decode_rows if dims_from_row(r).key() == key]
        lay = [dict(r, seconds=r["seconds"] / r["layers"]) for r in dec if r["part"] == "layers"]
        head = [r for r in dec if r["part"] == "head"]
        dfit = hfit = None
        if lay:
            med = medians(lay, ["batch", "context"])
            dfit = fit_linear(f"decode {label} (batch, context tokens)", [[b, b * c] for b, c in med],
                              list(med.values()))
        if head:
            med = medians(head, ["batch"])
            hfit = fit_linear(f"lm head {label} (batch)", [[k[0]] for k in med], list(med.values()))
        out[key] = ComputeData(dims, curves, dfit, hfit)
    return out


def fit_profile(profile: Profile) -> FittedProfile:
    """Fit every curve of ``profile``; missing or failed sections leave their curves ``None``/empty."""
    copies = _fit_copies(profile.rows("copy"))
    malloc, free, pin_bw = _fit_alloc(profile.rows("alloc"))
    proc = medians(profile.rows("process"), ["phase"])
    phases = {k[0]: v for k, v in proc.items()}
    disk_cold, disk_warm, dropped = _fit_disk(profile.rows("disk"))
    scratch_fs = profile.meta.get("host", {}).get("scratch_fs")
    if disk_cold is not None and scratch_fs in MEMORY_FILESYSTEMS:
        warnings.warn(f"disk.csv: the scratch directory was on {scratch_fs}; the 'ssd_read' bandwidth is "
                      "memory's, not a disk's", UserWarning, stacklevel=2)
    return FittedProfile(
        name=profile.name, measured=profile.measured, meta=profile.meta,
        assumptions=Assumptions.from_rows(profile.rows("assumed")),
        copies=copies, host_pin_bytes_per_s=pin_bw, malloc=malloc, free=free,
        vmm=_fit_vmm(profile.rows("vmm")), process_s=sum(phases.values()) if phases else None,
        process_phases=phases, load_per_tensor_s=_fit_load(profile.rows("weight_load"), copies),
        disk_cold=disk_cold, disk_warm=disk_warm, disk_dropped=dropped,
        interference=_fit_interference(profile.rows("interference")),
        compute=_fit_compute(profile.rows("prefill"), profile.rows("decode")),
    )
