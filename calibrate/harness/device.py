"""The backend interface every measurement goes through.

:class:`~warmsim.calibrate.harness.torch_device.TorchDevice` measures a real CUDA GPU;
:class:`~warmsim.calibrate.harness.fake.FakeDevice` returns deterministic synthetic timings so that the whole
bookkeeping (sweeps, tables, meta, failures) runs on a CPU in tests. Every timing method returns one
number of seconds per repetition, measured after a warm-up.
"""

from __future__ import annotations

from typing import Any, Protocol

from warmsim.sim.costprofile.shapes import ShardDims

#: Phases of a fresh worker process, in order.
PROCESS_PHASES = ("python", "import_torch", "cuda_context", "first_gemm")
#: VMM operations timed per chunk; ``remap`` maps kept handles again and sets access.
VMM_OPS = ("create", "map", "set_access", "unmap", "release", "remap")
#: Interference scenarios (see ``profile.TABLES['interference']``).
INTERFERENCE_SCENARIOS = ("prefill_alone", "prefill_with_copy", "decode_alone", "decode_with_copy",
                          "copy_alone", "copy_with_compute", "copy_pair")


class NoDeviceError(RuntimeError):
    """The backend cannot run here (no torch, no CUDA GPU): turned into a user error by the CLI."""


class Device(Protocol):
    """One GPU (or a stand-in) the harness measures."""

    def info(self) -> dict[str, Any]:
        """``{"gpu": {...}, "host": {...}}`` for ``meta.json`` (name, memory, versions, PCIe)."""

    def copy_s(self, direction: str, memory: str, nbytes: int, reps: int) -> list[float]:
        """One copy of ``nbytes`` (h2d / d2h / h2h) from pinned or pageable host memory."""

    def host_pin_s(self, nbytes: int) -> float:
        """Allocating ``nbytes`` of pinned host memory (kept out of the copy timings)."""

    def alloc_s(self, points: list[tuple[int, int]], reps: int) -> dict[tuple[str, int, int], list[float]]:
        """cudaMalloc and cudaFree of ``count`` buffers of ``size`` for each ``(size, count)`` point,
        with the caching allocator off; keys ``(op, size, count)``, op ``malloc`` or ``free``."""

    def vmm_s(self, total_bytes: int, chunk_bytes: int, reps: int) -> dict[str, list[float]]:
        """Each of :data:`VMM_OPS` over all chunks of ``total_bytes``."""

    def process_s(self, reps: int) -> dict[str, list[float]]:
        """Each of :data:`PROCESS_PHASES` in a fresh subprocess."""

    def prefill_s(self, dims: ShardDims, layers: int, tokens: int, batch: int, reps: int) -> list[float]:
        """Prefill of ``layers`` layers over ``batch`` sequences of ``tokens`` tokens."""

    def decode_s(self, dims: ShardDims, layers: int, batch: int, context: int, reps: int) -> list[float]:
        """One decode step of ``layers`` layers, ``batch`` sequences with ``context`` cached tokens each."""

    def head_s(self, dims: ShardDims, batch: int, reps: int) -> list[float]:
        """Final norm + LM head over ``batch`` tokens."""

    def weight_load_s(self, source: str, buffers: str, tensor_bytes: list[int], reps: int) -> list[float]:
        """Loading tensors of these sizes host->GPU one by one into fresh or preallocated buffers."""

    def disk_s(self, tensor_bytes: list[int], reps: int) -> dict[tuple[str, str], list[float]]:
        """safetensors file -> GPU; keys ``(cache, dropped)`` with cache ``cold``/``warm`` and
        ``dropped`` naming how the page cache was dropped (``none`` if it could not be)."""

    def interference_s(self, scenario: str, dims: ShardDims, layers: int, copy_bytes: int,
                       reps: int) -> list[float]:
        """Durations for one of :data:`INTERFERENCE_SCENARIOS`."""

    def close(self) -> None:
        """Release host and device buffers."""
