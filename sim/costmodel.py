"""``ProfileCostModel``: the simulator's :class:`warmsim.sim.cost.CostModel` from a fitted calibration
profile (:mod:`warmsim.sim.costprofile`; fitted once and cached by the profile's content hash,
:mod:`warmsim.sim.costprofile.cache`).

Imports neither torch nor anything of calibrate/, so the simulator can use it on any machine.
"""

from __future__ import annotations

import math
from pathlib import Path

from warmsim.sim.cost import LINKS, SOURCES, DecodeCoeffs, Interference
from warmsim.sim.costprofile.cache import fitted_profile
from warmsim.sim.costprofile.compute import ModelCompute, model_compute
from warmsim.sim.costprofile.fit import FittedProfile
from warmsim.sim.costprofile.shipped import resolve
from warmsim.sim.errors import UserError
from warmsim.sim.models import CHUNK_BYTES, ServedModel

#: Copy fits backing each PCIe link kind.
_COPY_LINKS = {"pcie_h2d_pinned": ("h2d", "pinned"), "pcie_h2d_pageable": ("h2d", "pageable"),
               "pcie_d2h": ("d2h", "pinned"), "host_mem": ("h2h", "pageable")}


class ProfileCostModel:
    """Costs interpolated from a fitted profile. Deterministic: every method is a pure function of
    its arguments; per-(shape, TP) compute curves and prefill times are cached on the instance."""

    def __init__(self, fitted: FittedProfile):
        self.fitted = fitted
        self.name: str = fitted.name
        self.measured: bool = fitted.measured
        self._compute: dict[tuple, ModelCompute] = {}
        self._decode: dict[tuple, DecodeCoeffs] = {}
        self._prefill: dict[tuple, float] = {}  # (shape, TP, tokens, sequences) -> seconds
        self._links = {link: self._link(link) for link in LINKS}

    @classmethod
    def load(cls, name_or_path: str | Path) -> ProfileCostModel:
        """Load a shipped profile by name (e.g. ``h100_analytic``) or a profile directory, fitted once
        (:func:`warmsim.sim.costprofile.cache.fitted_profile`: in-process memo and on-disk cache)."""
        return cls(fitted_profile(resolve(name_or_path)))

    def __repr__(self) -> str:
        return f"ProfileCostModel(name={self.name!r}, measured={self.measured})"

    # -- helpers
    def _need(self, value, what: str):
        if value is None:
            raise UserError(f"calibration profile '{self.name}' has no {what} (section failed or missing)")
        return value

    def _link(self, link: str) -> float | None:
        f, a = self.fitted, self.fitted.assumptions
        if link in _COPY_LINKS:
            fit = f.copies.get(_COPY_LINKS[link])
            return fit.bytes_per_s if fit else None
        if link == "ssd_read":
            return f.disk_cold.bytes_per_s if f.disk_cold else None
        if link == "nvlink":
            return a.nvlink_bytes_per_s
        if link == "nic":
            return a.nic_bytes_per_s
        if link == "page_cache_read":
            return a.page_cache_read_bytes_per_s
        raise KeyError(link)

    def model_compute(self, model: ServedModel) -> ModelCompute:
        """Cached compute curves of ``model``'s shape at its TP degree."""
        key = (model.shape, model.tp)
        mc = self._compute.get(key)
        if mc is None:
            mc = self._compute[key] = model_compute(model.shape, model.tp, self.fitted.compute,
                                                    self.fitted.assumptions)
        return mc

    # -- CostModel
    def process_start_s(self) -> float:
        return self._need(self.fitted.process_s, "process-start measurements")

    def stage_s(self, stage: str, model: ServedModel) -> float:
        a = self.fitted.assumptions
        if stage == "engine_process":
            return a.engine_import_s
        if stage == "engine_prepare":
            return a.engine_config_s + a.tokenizer_s + a.worker_handoff_s
        if stage == "tp_comm":
            return a.tp_comm_init_s if model.tp > 1 else a.tp1_group_init_s
        if stage == "engine_init":
            return a.model_init_s + a.kv_setup_s + a.api_server_s
        if stage == "cuda_graphs":
            return a.engine_cuda_graphs * (a.engine_graph_overhead_s + self.decode_coeffs(model).step_s(1, 0))
        if stage == "engine_wake":
            return a.sleep_call_s
        raise KeyError(stage)

    def alloc_s(self, nbytes: int) -> float:
        m = self._need(self.fitted.malloc, "cudaMalloc measurements")
        return m.total_s(nbytes, self.fitted.assumptions.mean_tensor_bytes)

    def free_s(self, nbytes: int) -> float:
        m = self._need(self.fitted.free, "cudaFree measurements")
        return m.total_s(nbytes, self.fitted.assumptions.mean_tensor_bytes)

    def vmm_map_s(self, nbytes: int) -> float:
        m = self._need(self.fitted.vmm.get("remap"), "VMM re-map measurements")
        return m.total_s(nbytes, CHUNK_BYTES)

    def vmm_unmap_s(self, nbytes: int) -> float:
        m = self._need(self.fitted.vmm.get("unmap"), "VMM unmap measurements")
        return m.total_s(nbytes, CHUNK_BYTES)

    def vmm_alloc_s(self, nbytes: int, chunk_bytes: int | None = None) -> float:
        if nbytes <= 0:
            return 0.0
        chunk = self.fitted.assumptions.mean_tensor_bytes if chunk_bytes is None else chunk_bytes
        total = 0.0
        for op in ("create", "map", "set_access"):
            f = self._need(self.fitted.vmm.get(op), f"VMM {op} measurements").fit
            # A handle larger than the largest measured one is priced as that one: per-call costs
            # hardly grow with the handle's size over the measured 2-512 MiB (a big KV tensor is
            # one call, not a line extrapolated to tens of GB).
            size = min(chunk, f.ranges[0][1])
            total += math.ceil(nbytes / chunk) * f(size)
        return total

    def pipeline_hop_s(self) -> float:
        return self.fitted.assumptions.pipeline_hop_s

    def link_bandwidth(self, link: str) -> float:
        if link not in self._links:
            raise UserError(f"unknown link kind '{link}' (known: {', '.join(LINKS)})")
        return self._need(self._links[link], f"measurement for link '{link}'")

    def load_overhead_s(self, source: str, nbytes: int) -> float:
        if source not in SOURCES:
            raise UserError(f"unknown weight source '{source}' (known: {', '.join(SOURCES)})")
        if source == "prewarmed" or nbytes <= 0:
            return 0.0
        f = self.fitted
        if source == "ssd":
            return max(0.0, self._need(f.disk_cold, "disk measurements").latency_s)
        # Peer copies are tensor-by-tensor device copies: their launch costs are taken as those of
        # the pinned host loads (no GPU-to-GPU load is measured).
        pageable = source in ("host_pageable", "page_cache")  # copies from pageable memory, tensor by tensor
        fit = f.load_per_tensor_s.get("host_pageable" if pageable else "host_pinned")
        fit = self._need(fit, f"weight-load measurements for {source}")
        tensors = -(-int(nbytes) // int(f.assumptions.mean_tensor_bytes))
        return max(0.0, fit(tensors, warn=False))

    def prefill_s(self, model: ServedModel, tokens: int, seqs: int) -> float:
        # Memoised: a replay asks for the same few thousand (tokens, sequences) pairs millions of times.
        key = (model.shape, model.tp, tokens, seqs)
        t = self._prefill.get(key)
        if t is None:
            t = self._prefill[key] = self.model_compute(model).prefill_s(tokens, seqs)
        return t

    def decode_coeffs(self, model: ServedModel) -> DecodeCoeffs:
        key = (model.shape, model.tp)
        c = self._decode.get(key)
        if c is None:
            c = self._decode[key] = self.model_compute(model).decode_coeffs()
        return c

    def interference(self) -> Interference:
        return self.fitted.interference
