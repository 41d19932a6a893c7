"""The cost-model seam: every duration the simulator charges comes through :class:`CostModel`.

Two implementations exist: :class:`ConstantCostModel` here (fixed numbers, for tests and
hand-checked cases) and ``sim.costmodel.ProfileCostModel``, which reads a calibration profile
(measured on a GPU, or the labelled analytic one) and interpolates its fitted curves.

Bandwidths are returned as link capacities; the simulator's flow network shares them max-min fairly
between concurrent transfers, so a cost model never has to know about contention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel
from warmsim.sim.sources import SOURCES as _SOURCE_TABLE

#: Where a model's weights come from when an instance loads them (the table in :mod:`warmsim.sim.sources`).
#: ``peer_nvlink`` / ``peer_rdma`` copy them from the GPUs of a running instance of the same model
#: (same node / another node).
SOURCES = tuple(_SOURCE_TABLE)
#: The sources that copy from a running instance's GPUs.
PEER_SOURCES = tuple(n for n, s in _SOURCE_TABLE.items() if s.peer)
#: The storage tiers a policy may name as where weights come from (no replica, no peer needed).
STORAGE_SOURCES = tuple(n for n, s in _SOURCE_TABLE.items() if s.storage)


def check_source(source: str, what: str, allowed: tuple[str, ...] | None = None) -> None:
    """:class:`UserError` naming ``what`` (e.g. ``FirstFitActivator.source``) unless ``source`` is allowed
    (default: a storage tier of the source table, :mod:`warmsim.sim.sources`, read at the call)."""
    if allowed is None:
        allowed = tuple(n for n, s in _SOURCE_TABLE.items() if s.storage)
    if source not in allowed:
        raise UserError(f"{what}: unknown weight source {source!r} (known: {', '.join(allowed)})")

#: The fixed-cost stages of an instance start a cost model prices (:meth:`CostModel.stage_s`); the
#: whole start path, and which stages a system pays, is :mod:`warmsim.sim.startup`.
COST_STAGES: dict[str, str] = {
    "engine_process": "serving-engine process start and its imports (vLLM, the API server)",
    "engine_prepare": "engine configuration, tokenizer, worker hand-off (before the weights are needed)",
    "tp_comm": "the TP group's communicator (NCCL world; a world of one for TP 1)",
    "engine_init": "model object, the rest of engine construction, KV set-up and the API server",
    "cuda_graphs": "CUDA-graph capture of the decode batch sizes (none with eager engines)",
    "engine_wake": "a suspended engine's sleep or wake call beyond moving weights and mapping memory "
                   "(vLLM sleep mode; paid only by wakes, sim/mechanisms/sleep.py)",
}

#: Link kinds a cost model gives a capacity for (bytes/s).
LINKS = ("pcie_h2d_pinned", "pcie_h2d_pageable", "pcie_d2h", "ssd_read", "host_mem", "nvlink", "nic", "page_cache_read")


@dataclass(frozen=True)
class DecodeCoeffs:
    """Decode step time = ``base_s + per_seq_s * batch + per_ctx_token_s * total_context_tokens``.

    Linear in batch and context so that the engine can sum many steps in closed form.
    """

    base_s: float
    per_seq_s: float
    per_ctx_token_s: float

    def step_s(self, batch: int, ctx_tokens: int) -> float:
        return self.base_s + self.per_seq_s * batch + self.per_ctx_token_s * ctx_tokens


@dataclass(frozen=True)
class Interference:
    """Mutual slowdown of a background weight copy and compute on the same GPU.

    ``compute_slowdown`` is the fractional increase of step times while a copy runs onto that GPU
    (0.05 = 5% slower); ``copy_slowdown`` the fractional decrease of the copy's bandwidth while the
    GPU computes.
    """

    compute_slowdown: float = 0.0
    copy_slowdown: float = 0.0


@runtime_checkable
class CostModel(Protocol):
    """Durations and capacities for one GPU kind.

    Each method is a pure function of its arguments (no clock, no state), so the simulator may call
    it as often as it likes and results stay deterministic.
    """

    #: Profile name, written next to every result the model produced.
    name: str
    #: True only when the numbers were measured on a real GPU: by the calibration harness, or by an external
    #: script (``h100_reference``; its meta.json ``measured_by`` and ``provenance`` say which tables).
    measured: bool

    def process_start_s(self) -> float:
        """Worker process start, ``import torch``, CUDA context creation and the first GEMM
        (device-level prewarm removes it)."""

    def stage_s(self, stage: str, model: ServedModel) -> float:
        """One fixed-cost stage of an instance start of ``model`` (a name in
        :data:`COST_STAGES`: ``engine_process``, ``engine_prepare``, ``tp_comm``,
        ``engine_init``, ``cuda_graphs``); which stages a start pays is the system's
        (:class:`warmsim.sim.startup.StartPath`)."""

    def alloc_s(self, nbytes: int) -> float:
        """Allocating ``nbytes`` of fresh GPU buffers for weights, tensor by tensor (cudaMalloc)."""

    def free_s(self, nbytes: int) -> float:
        """Synchronously freeing ``nbytes`` of GPU buffers (cudaFree)."""

    def vmm_map_s(self, nbytes: int) -> float:
        """Mapping ``nbytes`` of kept 2 MiB physical handles into a virtual range, with access set."""

    def vmm_unmap_s(self, nbytes: int) -> float:
        """Unmapping ``nbytes`` (asynchronous in WarmServe; charged where a policy makes it blocking)."""

    def vmm_alloc_s(self, nbytes: int, chunk_bytes: int | None = None) -> float:
        """Backing ``nbytes`` with new physical memory through the VMM API: create, map and set access,
        one handle per ``chunk_bytes`` (kvcached's 2 MiB pages); ``None``: one handle per weight
        tensor of the profile's average tensor size (vLLM's CuMemAllocator, one per allocation)."""

    def pipeline_hop_s(self) -> float:
        """Latency one hand-off of activations between pipeline stages on different servers adds to a
        step, beyond the bytes' time on the NIC (HydraServe's TCP between pods)."""

    def link_bandwidth(self, link: str) -> float:
        """Capacity of one link of kind ``link`` (one of :data:`LINKS`), bytes/s."""

    def load_overhead_s(self, source: str, nbytes: int) -> float:
        """Fixed cost of a weight load from ``source`` on top of moving the bytes (per-tensor launch,
        file open, staging set-up)."""

    def prefill_s(self, model: ServedModel, tokens: int, seqs: int) -> float:
        """One prefill step over ``seqs`` sequences totalling ``tokens`` prompt tokens."""

    def decode_coeffs(self, model: ServedModel) -> DecodeCoeffs:
        """Coefficients of the decode step time of ``model`` at its TP degree."""

    def interference(self) -> Interference:
        """Slowdown factors of a background copy onto a computing GPU."""


@dataclass(frozen=True)
class ConstantCostModel:
    """Every cost is a fixed number: for tests and hand-computed cases.

    ``prefill_s`` is ``prefill_base_s + prefill_per_token_s * tokens``; decode steps use
    ``decode``; copies run at the given link capacities. Of the start stages, ``engine_init`` (the
    engine's construction once its weights are in place) is 1 s and the others are 0 unless given.
    """

    name: str = "constant"
    measured: bool = False
    process_start: float = 1.0
    engine_init: float = 1.0
    engine_process: float = 0.0
    engine_prepare: float = 0.0
    tp_comm: float = 0.0
    cuda_graphs: float = 0.0
    engine_wake: float = 0.0
    alloc: float = 0.0
    free: float = 0.0
    vmm_map_per_gib: float = 0.0
    vmm_unmap_per_gib: float = 0.0
    vmm_alloc_per_gib: float = 0.0
    pipeline_hop: float = 0.0
    load_overhead: float = 0.0
    prefill_base_s: float = 0.01
    prefill_per_token_s: float = 0.0
    decode: DecodeCoeffs = DecodeCoeffs(0.01, 0.0, 0.0)
    bandwidth: float = 10e9
    slowdown: Interference = Interference()

    def process_start_s(self) -> float:
        return self.process_start

    def stage_s(self, stage: str, model: ServedModel) -> float:
        if stage not in COST_STAGES:
            raise KeyError(stage)
        return getattr(self, stage)

    def alloc_s(self, nbytes: int) -> float:
        return self.alloc

    def free_s(self, nbytes: int) -> float:
        return self.free

    def vmm_map_s(self, nbytes: int) -> float:
        return self.vmm_map_per_gib * nbytes / 2**30

    def vmm_unmap_s(self, nbytes: int) -> float:
        return self.vmm_unmap_per_gib * nbytes / 2**30

    def vmm_alloc_s(self, nbytes: int, chunk_bytes: int | None = None) -> float:
        return self.vmm_alloc_per_gib * nbytes / 2**30

    def pipeline_hop_s(self) -> float:
        return self.pipeline_hop

    def link_bandwidth(self, link: str) -> float:
        return self.bandwidth

    def load_overhead_s(self, source: str, nbytes: int) -> float:
        return self.load_overhead

    def prefill_s(self, model: ServedModel, tokens: int, seqs: int) -> float:
        return self.prefill_base_s + self.prefill_per_token_s * tokens

    def decode_coeffs(self, model: ServedModel) -> DecodeCoeffs:
        return self.decode

    def interference(self) -> Interference:
        return self.slowdown


#: What :class:`ScaledCost` may scale: the process start, each start stage and each link capacity.
SCALABLE = ("process", *COST_STAGES, *LINKS)


class ScaledCost:
    """A cost model with some start costs or link capacities multiplied by factors, for what-if runs
    (``cost.scale`` in a config, ``warmsim sensitivity``). Keys are :data:`SCALABLE` names: ``process``
    scales :meth:`~CostModel.process_start_s`, a stage name :meth:`~CostModel.stage_s` of that stage, a
    link kind :meth:`~CostModel.link_bandwidth` of that link. Everything else is the base model's (its
    bound methods, so the hot paths pay nothing for the wrapper). Its ``name`` says what was scaled."""

    def __init__(self, base: CostModel, factors: dict[str, float]):
        unknown = set(factors) - set(SCALABLE)
        if unknown:
            raise UserError(f"cost.scale: unknown key(s) {sorted(unknown)} (known: {', '.join(SCALABLE)})")
        self.base = base
        self.factors = dict(sorted(factors.items()))
        self.name = base.name + (" scaled " + " ".join(f"{k}x{v:g}" for k, v in self.factors.items())
                                 if self.factors else "")
        self.measured = base.measured
        for method in ("alloc_s", "free_s", "vmm_map_s", "vmm_unmap_s", "vmm_alloc_s", "pipeline_hop_s",
                       "load_overhead_s", "prefill_s", "decode_coeffs", "interference"):
            setattr(self, method, getattr(base, method))

    def process_start_s(self) -> float:
        return self.base.process_start_s() * self.factors.get("process", 1.0)

    def stage_s(self, stage: str, model: ServedModel) -> float:
        return self.base.stage_s(stage, model) * self.factors.get(stage, 1.0)

    def link_bandwidth(self, link: str) -> float:
        return self.base.link_bandwidth(link) * self.factors.get(link, 1.0)
