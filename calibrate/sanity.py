"""Compare a profile's headline numbers with the public anchors of ``docs/calibration.md``.

The anchors are sanity ranges, not ground truth: a value outside its range is flagged for a person
to look at (a wrong NUMA node, a link trained at a lower generation, a page cache that was not
dropped), never corrected. ``warmsim calibrate`` prints this table after a sweep, and
``warmsim calibrate --check PROFILE`` prints it for an existing profile, followed by the spread of
each table's repetitions (the median alone hides a noisy measurement).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from warmsim.sim.costprofile.fit import MEMORY_FILESYSTEMS, FittedProfile
from warmsim.sim.costprofile.profile import TABLES, Profile

GB = 1e9
MIB = 1 << 20


@dataclass(frozen=True)
class Anchor:
    """One public anchor: the accepted range of one quantity and where it comes from."""

    quantity: str
    unit: str
    low: float
    high: float
    source: str


#: Pinned host<->GPU bandwidth by PCIe generation (x16), GB/s.
PCIE_PINNED_GBPS: dict[int, Anchor] = {
    4: Anchor("pinned copy bandwidth", "GB/s", 18.0, 27.0, "PCIe Gen4 x16 achieves about 20-25 GB/s"),
    5: Anchor("pinned copy bandwidth", "GB/s", 45.0, 55.0, "PCIe Gen5 x16 achieves about 50-55 GB/s"),
}
#: Pinned over pageable bandwidth: pageable memory is slower (a staging copy through a pinned buffer).
PAGEABLE_RATIO = Anchor("pinned / pageable h2d bandwidth", "x", 1.0, math.inf,
                        "pageable memory is several times slower than pinned")
#: NVMe read bandwidth of a cold (page-cache-dropped) safetensors load.
NVME_GBPS = Anchor("cold disk->GPU bandwidth", "GB/s", 0.4, 29.0,
                   "NVMe: 0.4-7 GB/s per drive, striped arrays up to ~29 GB/s")
#: CUDA VMM per 2 MiB chunk (kvcached's A100 benchmark), accepted within a factor of ten either way.
VMM_PER_2MIB_S: dict[str, Anchor] = {
    op: Anchor(f"VMM {op} per 2 MiB", "us", a / 10, a * 10, f"kvcached A100: ~{a:g} us (accepted x0.1-x10)")
    for op, a in (("create", 193.0), ("map", 1.5), ("set_access", 36.0), ("unmap", 26.0))
}
#: CUDA context creation and ``import torch``.
CONTEXT_S = Anchor("CUDA context creation", "s", 0.0, 1.0, "well under a second on a current driver")
IMPORT_TORCH_S = Anchor("import torch", "s", 0.3, 15.0, "import torch costs seconds")


@dataclass(frozen=True)
class Check:
    """One row of the sanity table; ``verdict`` is ``ok``, ``OUTSIDE`` or ``not checked``."""

    quantity: str
    value: float | None
    unit: str
    low: float | None
    high: float | None
    verdict: str
    note: str


def _judge(a: Anchor, value: float | None, note: str = "", *, quantity: str | None = None,
           skip: str | None = None) -> Check:
    """``value`` against ``a``; with a ``skip`` reason it is reported but not judged."""
    q = quantity or a.quantity
    if value is None or not math.isfinite(value):
        return Check(q, value, a.unit, a.low, a.high, "not checked", note or "not measured")
    if skip:
        return Check(q, value, a.unit, a.low, a.high, "not checked", skip)
    ok = a.low <= value <= a.high
    return Check(q, value, a.unit, a.low, a.high, "ok" if ok else "OUTSIDE", note or a.source)


def _pcie_gen(meta: dict) -> int | None:
    """The link generation the copies should reach: NVML's maximum for this device and system (the
    current generation drops at idle), else the current one."""
    gpu = meta.get("gpu", {})
    for key in ("pcie_gen_max", "pcie_gen"):
        if isinstance(gpu.get(key), int):
            return gpu[key]
    return None


def check_profile(fp: FittedProfile) -> list[Check]:
    """Every sanity check this profile's data allows, in a fixed order."""
    out: list[Check] = []
    gen = _pcie_gen(fp.meta)
    anchor = PCIE_PINNED_GBPS.get(gen) if gen is not None else None
    for direction in ("h2d", "d2h"):
        bw = fp.copies.get((direction, "pinned"))
        value = bw.bytes_per_s / GB if bw else None
        quantity = f"pinned copy bandwidth ({direction})"
        if anchor is None:
            out.append(Check(quantity, value, "GB/s", None, None, "not checked",
                             f"no anchor for PCIe generation {gen}"))
        else:
            out.append(_judge(anchor, value, f"{anchor.source} (link Gen{gen})", quantity=quantity))
    pinned, pageable = fp.copies.get(("h2d", "pinned")), fp.copies.get(("h2d", "pageable"))
    out.append(_judge(PAGEABLE_RATIO, pinned.bytes_per_s / pageable.bytes_per_s if pinned and pageable else None))
    scratch_fs = fp.meta.get("host", {}).get("scratch_fs")
    skip = (f"the scratch directory is on {scratch_fs}: memory, not a disk" if scratch_fs in MEMORY_FILESYSTEMS
            else None if fp.disk_dropped else "the page cache could not be dropped: this is not a disk number")
    out.append(_judge(NVME_GBPS, fp.disk_cold.bytes_per_s / GB if fp.disk_cold else None, skip=skip))
    for op, anchor in VMM_PER_2MIB_S.items():
        fit = fp.vmm.get(op)
        out.append(_judge(anchor, fit.per_call_s(2 * MIB) * 1e6 if fit else None))
    create, remap = fp.vmm.get("create"), fp.vmm.get("remap")
    if create and remap:
        c, r = create.per_call_s(2 * MIB), remap.per_call_s(2 * MIB)
        out.append(Check("VMM remap of kept handles / create", r / c, "x", 0.0, 1.0, "ok" if r < c else "OUTSIDE",
                         "re-mapping kept handles is cheaper than creating them"))
    phases = fp.process_phases
    out.append(_judge(CONTEXT_S, phases.get("cuda_context")))
    out.append(_judge(IMPORT_TORCH_S, phases.get("import_torch")))
    return out


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf"
    return f"{v:.3g}"


def format_checks(name: str, measured: bool, checks: list[Check], note: str | None = None) -> str:
    """A plain-text table of ``checks`` with a closing line that counts the verdicts; ``note`` replaces
    the word "measured" (:func:`~warmsim.sim.costprofile.profile.external_note`)."""
    kind = note or ("measured" if measured else "NOT measured")
    lines = [f"sanity check of profile {name} ({kind}) against the public anchors of docs/calibration.md",
             f"  {'quantity':<38} {'value':>9} {'range':>17}  {'verdict':<11} note"]
    for c in checks:
        rng = f"{_fmt(c.low)}-{_fmt(c.high)} {c.unit}" if c.low is not None else f"- {c.unit}"
        lines.append(f"  {c.quantity:<38} {_fmt(c.value):>9} {rng:>17}  {c.verdict:<11} {c.note}")
    counts = {v: sum(c.verdict == v for c in checks) for v in ("ok", "OUTSIDE", "not checked")}
    lines.append(f"  {counts['ok']} ok, {counts['OUTSIDE']} outside their range, {counts['not checked']} not checked")
    return "\n".join(lines)


def outside(checks: list[Check]) -> list[Check]:
    """The checks whose value lies outside its anchor's range."""
    return [c for c in checks if c.verdict == "OUTSIDE"]



@dataclass(frozen=True)
class Spread:
    """How much the repetitions of one table's points disagree: ``(max - min) / median`` per point."""

    table: str
    points: int
    median: float
    worst: float
    worst_point: str


def spreads(profile: Profile) -> list[Spread]:
    """Per measured table, the median and the worst relative spread of its points' repetitions."""
    out = []
    for table, cols in TABLES.items():
        names = [c for c, _ in cols]
        if "rep" not in names:
            continue
        keys = [c for c in names if c not in ("seconds", "rep")]
        groups: dict[tuple, list[float]] = {}
        for r in profile.rows(table):
            groups.setdefault(tuple(r[k] for k in keys), []).append(r["seconds"])
        rel = {k: (max(v) - min(v)) / statistics.median(v) for k, v in groups.items()
               if len(v) > 1 and statistics.median(v) > 0}
        if not rel:
            continue
        worst = max(rel, key=rel.get)
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, worst) if k not in _SHAPE_DETAIL)
        out.append(Spread(table, len(rel), statistics.median(rel.values()), rel[worst], label))
    return out


#: Shape columns left out of a point's label (the shape name and tp identify it).
_SHAPE_DETAIL = {"hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab"}


def format_spreads(rows: list[Spread]) -> str:
    """A plain-text table of :func:`spreads` (empty profile: one line saying so)."""
    if not rows:
        return "spread of repetitions: no table with repeated points"
    lines = ["spread of repetitions ((max - min) / median of each point's repetitions)",
             f"  {'table':<13} {'points':>6} {'median':>8} {'worst':>8}  worst point"]
    for s in rows:
        lines.append(f"  {s.table:<13} {s.points:>6} {s.median:>8.1%} {s.worst:>8.1%}  {s.worst_point}")
    return "\n".join(lines)
