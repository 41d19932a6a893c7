"""The analytic H100 profile: datasheet-class numbers run through the harness's own sweep.

:class:`AnalyticDevice` implements the harness :class:`~warmsim.calibrate.harness.device.Device` interface
with closed-form timings from :class:`H100Params`, and :func:`build` runs the full sweep on it, so
the shipped ``h100_analytic`` profile has exactly the tables a measured run writes, labelled
``measured: false``. Every number is a field of :class:`H100Params` with its source.

:class:`H100EagerParams` is the same node serving with vLLM's ``--enforce-eager`` (no CUDA graphs), as
every engine of WarmServe's artifact does: each layer's kernel launches are paid on the CPU, one by one,
in decode as in prefill. It ships as ``h100_eager_analytic``, also ``measured: false``.

Regenerate with ``python -m warmsim.calibrate.analytic [--out DIR]`` and
``python -m warmsim.calibrate.analytic --eager [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from warmsim.calibrate.harness.device import INTERFERENCE_SCENARIOS, PROCESS_PHASES, VMM_OPS
from warmsim.calibrate.harness.plan import FULL, SweepPlan
from warmsim.sim.costprofile.assumptions import Assumptions
from warmsim.sim.costprofile.shapes import ShardDims

GB = 1e9
MIB = 1 << 20

#: Label written to the analytic profile's meta.json.
LABEL = "ANALYTIC, NOT MEASURED: H100 SXM 80GB datasheet-class numbers (calibrate/analytic.py)"
PROFILE_NAME = "h100_analytic"
#: Label and name of the eager-mode variant.
EAGER_LABEL = ("ANALYTIC, NOT MEASURED: H100 SXM 80GB datasheet-class numbers, eager mode (vLLM --enforce-eager, "
               "no CUDA graphs: per-layer kernel launches x CPU cost per launch) (calibrate/analytic.py H100EagerParams)")
EAGER_PROFILE_NAME = "h100_eager_analytic"


@dataclass(frozen=True)
class H100Params:
    """Analytic H100 SXM 80GB node. Each field's comment gives its source or assumption."""

    # --- compute (NVIDIA H100 SXM datasheet) ---
    peak_flops: float = 989e12  # dense BF16 tensor-core peak, FLOP/s
    prefill_mfu: float = 0.55  # assumed achieved fraction of peak for prefill GEMMs + flash attention
    decode_mfu: float = 0.30  # assumed achieved fraction for the (small) compute part of decode
    hbm_bytes_per_s: float = 3.35e12  # HBM3 bandwidth, datasheet
    hbm_efficiency: float = 0.80  # assumed achievable fraction for weight/KV streaming (GEMV-like)
    prefill_layer_overhead_s: float = 40e-6  # assumed: ~10 eager kernel launches per layer
    decode_layer_overhead_s: float = 15e-6  # assumed: per-layer kernel gaps under CUDA graphs
    head_overhead_s: float = 20e-6  # assumed: final norm + LM head + sampling launch
    # --- PCIe Gen5 x16 and host memory ---
    copy_latency_s: float = 10e-6  # assumed per cudaMemcpyAsync call set-up
    h2d_pinned_bytes_per_s: float = 50 * GB  # PCIe Gen5 x16 pinned, calibration.md anchor 50-55 GB/s
    h2d_pageable_bytes_per_s: float = 15 * GB  # assumed ~3.3x slower than pinned (staging copy)
    d2h_pinned_bytes_per_s: float = 50 * GB  # symmetric link, same anchor
    d2h_pageable_bytes_per_s: float = 15 * GB  # as h2d pageable
    host_mem_bytes_per_s: float = 400 * GB  # 2-socket DDR5-4800, 16 channels ~614 GB/s peak, ~65% achieved
    host_pin_bytes_per_s: float = 4 * GB  # pinning costs "seconds per 10 GB" (calibration.md): 2.5 s/10 GB
    # --- NVMe (configurable per cluster anyway) ---
    nvme_bytes_per_s: float = 7 * GB  # one Gen4/Gen5 NVMe drive, upper end of the 0.4-7 GB/s anchor
    file_open_s: float = 5e-3  # assumed: open + safetensors header parse
    # --- allocation (assumptions until measured; HF notes per-call costs dominate many small allocs) ---
    malloc_call_s: float = 10e-6  # cudaMalloc fixed cost per call
    malloc_s_per_gib: float = 0.5e-3  # cudaMalloc physical backing per GiB
    free_call_s: float = 15e-6  # cudaFree fixed cost per call (implicit sync)
    free_s_per_gib: float = 2e-3  # cudaFree unmapping per GiB
    # --- CUDA VMM per call (kvcached A100 benchmark, 2 MiB pages; no public H100 number) ---
    vmm_create_s: float = 193e-6  # cuMemCreate
    vmm_map_s: float = 1.5e-6  # cuMemMap
    vmm_set_access_s: float = 36e-6  # cuMemSetAccess
    vmm_unmap_s: float = 26e-6  # cuMemUnmap
    vmm_release_s: float = 30e-6  # cuMemRelease: assumed similar to unmap
    # --- process start (calibration.md: import torch costs seconds, context well under a second) ---
    python_start_s: float = 0.05  # interpreter start
    import_torch_s: float = 2.0  # import torch (+ engine imports)
    cuda_context_s: float = 0.4  # first CUDA call: context creation
    first_gemm_s: float = 0.3  # cuBLAS handle + first kernel load
    # --- weight loading ---
    load_fixed_s: float = 2e-3  # assumed per-load set-up (state dict walk)
    load_per_tensor_s: float = 20e-6  # assumed per-tensor Python + launch cost
    # --- interference (assumed: a 50 GB/s copy takes ~1.5% of HBM bandwidth plus copy-engine contention)
    compute_slowdown: float = 0.03  # compute steps 3% slower while a copy runs
    copy_slowdown: float = 0.05  # copy bandwidth 5% lower while the GPU computes

    def sources(self) -> dict[str, str]:
        """Field -> value, for meta.json (the comments above are the sources)."""
        return {f.name: repr(getattr(self, f.name)) for f in fields(self)}

    def prefill_overhead_s(self, dims: ShardDims) -> float:
        """Launch overhead added to one layer's prefill of the shard ``dims``."""
        return self.prefill_layer_overhead_s

    def decode_overhead_s(self, dims: ShardDims) -> float:
        """Launch overhead added to one layer's decode step of the shard ``dims``."""
        return self.decode_layer_overhead_s


@dataclass(frozen=True)
class H100EagerParams(H100Params):
    """:class:`H100Params` served in eager mode (vLLM ``--enforce-eager``, which every engine of the
    WarmServe artifact gets: ``muxserve_utils.py`` and ``prewarm_manager.py create_engine``).

    Without CUDA graphs every kernel of a layer is issued from Python: the per-layer overhead becomes
    (kernel launches per layer) x (CPU cost of one launch), charged in full on top of the GPU time (no
    overlap of the CPU issuing with the GPU work is assumed: an upper bound on how much of the launch
    cost shows). Derived from the kernel count and a per-launch cost, not fitted to any latency.
    Everything else is :class:`H100Params`.
    """

    # Per-layer fixed gaps beyond the launches below (the base profile's 40 us / 15 us are its whole
    # launch allowance, replaced here by the count x cost): 0.
    prefill_layer_overhead_s: float = 0.0
    decode_layer_overhead_s: float = 0.0
    # CPU time to issue one kernel from eager PyTorch: Python module call + ATen dispatch (~5 us) plus
    # cudaLaunchKernel (4-6 us). Assumed 10 us, the low-middle of the "~5-25 us of CPU-side work per op"
    # usually quoted for eager PyTorch; per-op Python work that launches no kernel (split, view, empty)
    # is not counted.
    launch_cpu_s: float = 10e-6
    # Kernels per Llama layer in eager vLLM 0.6.3 (the artifact's vllm-0.6.3.post1, LlamaDecoderLayer,
    # flash-attention backend), prefill and decode alike: fused_add_rms_norm, qkv_proj GEMM,
    # rotary_embedding, reshape_and_cache_flash, flash attention, o_proj GEMM, fused_add_rms_norm,
    # gate_up_proj GEMM, silu_and_mul, down_proj GEMM.
    kernels_per_layer: int = 10
    # Extra launches per layer when TP > 1: two all-reduces (after o_proj and down_proj), each a copy
    # into the registered buffer plus the reduce kernel outside a CUDA graph (vLLM custom_all_reduce.py,
    # CustomAllreduce.custom_all_reduce -> all_reduce_unreg).
    tp_launches_per_layer: int = 4
    # head_overhead_s is unchanged: vLLM 0.6.3 captures only the model's forward in CUDA graphs, so
    # the final logits and the sampler are eager in both profiles.

    def launches_per_layer(self, dims: ShardDims) -> int:
        """Kernel launches of one layer of the shard ``dims``."""
        return self.kernels_per_layer + (self.tp_launches_per_layer if dims.tp > 1 else 0)

    def prefill_overhead_s(self, dims: ShardDims) -> float:
        return self.prefill_layer_overhead_s + self.launches_per_layer(dims) * self.launch_cpu_s

    def decode_overhead_s(self, dims: ShardDims) -> float:
        return self.decode_layer_overhead_s + self.launches_per_layer(dims) * self.launch_cpu_s


#: engine start in eager mode: ``--enforce-eager`` captures no CUDA graphs.
EAGER_ASSUMPTIONS = Assumptions(engine_cuda_graphs=0)
_EAGER_GRAPHS_SOURCE = ("0: --enforce-eager captures no CUDA graphs (artifact muxserve_utils.py and "
                        "prewarm_manager.py create_engine pass --enforce-eager)")


class AnalyticDevice:
    """A :class:`~warmsim.calibrate.harness.device.Device` whose timings are formulas of :class:`H100Params`.

    ``jitter`` > 0 multiplies each timing by ``1 + jitter * u`` with ``u`` uniform in [-1, 1] from a
    generator seeded with ``seed`` (deterministic for a given call sequence).
    """

    def __init__(self, params: H100Params | None = None, *, jitter: float = 0.0, seed: int = 0):
        self.p = params or H100Params()
        self.jitter = jitter
        self._rng = random.Random(seed)

    # -- helpers
    def _reps(self, value: float, reps: int) -> list[float]:
        return [value * (1.0 + self.jitter * self._rng.uniform(-1.0, 1.0)) for _ in range(reps)]

    def info(self) -> dict[str, Any]:
        return {"gpu": {"name": "NVIDIA H100 80GB HBM3 (analytic)", "memory_bytes": 80 * 2**30,
                        "driver": "n/a (analytic)", "cuda": "n/a (analytic)", "torch": "n/a (analytic)",
                        "pcie_gen": 5, "pcie_width": 16, "count": 8},
                "host": {"memory_bytes": 2 * 2**40, "cpu": "n/a (analytic)"}}

    def _copy_bw(self, direction: str, memory: str) -> float:
        p = self.p
        return {("h2d", "pinned"): p.h2d_pinned_bytes_per_s, ("h2d", "pageable"): p.h2d_pageable_bytes_per_s,
                ("d2h", "pinned"): p.d2h_pinned_bytes_per_s, ("d2h", "pageable"): p.d2h_pageable_bytes_per_s,
                ("h2h", "pageable"): p.host_mem_bytes_per_s, ("h2h", "pinned"): p.host_mem_bytes_per_s}[
            (direction, memory)]

    # -- Device interface
    def copy_s(self, direction: str, memory: str, nbytes: int, reps: int) -> list[float]:
        return self._reps(self.p.copy_latency_s + nbytes / self._copy_bw(direction, memory), reps)

    def host_pin_s(self, nbytes: int) -> float:
        return nbytes / self.p.host_pin_bytes_per_s

    def alloc_s(self, points: list[tuple[int, int]], reps: int) -> dict[tuple[str, int, int], list[float]]:
        p, out = self.p, {}
        for size, count in points:
            gib = size / 2**30
            out[("malloc", size, count)] = self._reps(count * (p.malloc_call_s + gib * p.malloc_s_per_gib), reps)
            out[("free", size, count)] = self._reps(count * (p.free_call_s + gib * p.free_s_per_gib), reps)
        return out

    def vmm_s(self, total_bytes: int, chunk_bytes: int, reps: int) -> dict[str, list[float]]:
        p = self.p
        n = total_bytes // chunk_bytes
        per = {"create": p.vmm_create_s, "map": p.vmm_map_s, "set_access": p.vmm_set_access_s,
               "unmap": p.vmm_unmap_s, "release": p.vmm_release_s, "remap": p.vmm_map_s + p.vmm_set_access_s}
        return {op: self._reps(n * per[op], reps) for op in VMM_OPS}

    def process_s(self, reps: int) -> dict[str, list[float]]:
        p = self.p
        vals = {"python": p.python_start_s, "import_torch": p.import_torch_s, "cuda_context": p.cuda_context_s,
                "first_gemm": p.first_gemm_s}
        return {ph: self._reps(vals[ph], reps) for ph in PROCESS_PHASES}

    def _hbm(self) -> float:
        return self.p.hbm_bytes_per_s * self.p.hbm_efficiency

    def prefill_layer_s(self, dims: ShardDims, tokens: int, batch: int) -> float:
        """One layer's prefill: roofline max of compute and weight streaming, plus launch overhead."""
        p = self.p
        compute = dims.layer_flops(tokens, batch) / (p.peak_flops * p.prefill_mfu)
        memory = (dims.layer_bytes + tokens * batch * dims.kv_bytes_per_token_layer) / self._hbm()
        return max(compute, memory) + p.prefill_overhead_s(dims)

    def decode_layer_s(self, dims: ShardDims, batch: int, context: int) -> float:
        """One layer's decode step: weights + KV read at HBM speed, GEMM FLOPs, launch overhead."""
        p = self.p
        memory = (dims.layer_bytes + batch * context * dims.kv_bytes_per_token_layer) / self._hbm()
        compute = batch * 2.0 * dims.layer_params / (p.peak_flops * p.decode_mfu)
        return memory + compute + p.decode_overhead_s(dims)

    def head_step_s(self, dims: ShardDims, batch: int) -> float:
        """Final norm + LM head over ``batch`` tokens."""
        p = self.p
        return (dims.head_bytes / self._hbm() + batch * 2.0 * dims.vocab * dims.hidden / (p.peak_flops * p.decode_mfu)
                + p.head_overhead_s)

    def prefill_s(self, dims: ShardDims, layers: int, tokens: int, batch: int, reps: int) -> list[float]:
        return self._reps(layers * self.prefill_layer_s(dims, tokens, batch), reps)

    def decode_s(self, dims: ShardDims, layers: int, batch: int, context: int, reps: int) -> list[float]:
        return self._reps(layers * self.decode_layer_s(dims, batch, context), reps)

    def head_s(self, dims: ShardDims, batch: int, reps: int) -> list[float]:
        return self._reps(self.head_step_s(dims, batch), reps)

    def weight_load_s(self, source: str, buffers: str, tensor_bytes: list[int], reps: int) -> list[float]:
        p = self.p
        memory = {"host_pinned": "pinned", "host_pageable": "pageable"}[source]
        n, total = len(tensor_bytes), sum(tensor_bytes)
        t = p.load_fixed_s + n * p.load_per_tensor_s + total / self._copy_bw("h2d", memory)
        if buffers == "fresh":
            t += n * p.malloc_call_s + total / 2**30 * p.malloc_s_per_gib
        return self._reps(t, reps)

    def disk_s(self, tensor_bytes: list[int], reps: int) -> dict[tuple[str, str], list[float]]:
        p, total = self.p, sum(tensor_bytes)
        return {("cold", "drop_caches"): self._reps(p.file_open_s + total / p.nvme_bytes_per_s, reps),
                ("warm", "none"): self._reps(p.file_open_s + total / p.h2d_pageable_bytes_per_s, reps)}

    def interference_s(self, scenario: str, dims: ShardDims, layers: int, copy_bytes: int,
                       reps: int) -> list[float]:
        p = self.p
        prefill = layers * self.prefill_layer_s(dims, 1024, 1)
        decode = layers * self.decode_layer_s(dims, 16, 1024)
        copy = p.copy_latency_s + copy_bytes / p.h2d_pinned_bytes_per_s
        vals = {"prefill_alone": prefill, "prefill_with_copy": prefill * (1 + p.compute_slowdown),
                "decode_alone": decode, "decode_with_copy": decode * (1 + p.compute_slowdown),
                "copy_alone": copy, "copy_with_compute": copy / (1 - p.copy_slowdown),
                "copy_pair": p.copy_latency_s + 2 * copy_bytes / p.h2d_pinned_bytes_per_s}
        assert set(vals) == set(INTERFERENCE_SCENARIOS)
        return self._reps(vals[scenario], reps)

    def close(self) -> None:
        return None


def build(out: Path, params: H100Params | None = None, assumptions: Assumptions | None = None,
          plan: SweepPlan | None = None, created: str = "analytic", eager: bool = False) -> dict[str, Any]:
    """Write the analytic profile into ``out`` (the full sweep, one repetition: timings are exact).

    ``eager``: the eager-mode variant (:class:`H100EagerParams`, no CUDA graphs at engine start, the
    eager label) unless ``params`` / ``assumptions`` are given."""
    from warmsim.calibrate.harness.runner import run_sweep

    params = params or (H100EagerParams() if eager else H100Params())
    assumptions = assumptions or (EAGER_ASSUMPTIONS if eager else Assumptions())
    rows = assumptions.rows()
    if eager:
        rows = [dict(r, source=_EAGER_GRAPHS_SOURCE) if r["parameter"] == "engine_cuda_graphs" and r["value"] == 0
                else r for r in rows]
    plan = plan or dataclasses.replace(FULL, reps=1, process_reps=1)
    return run_sweep(AnalyticDevice(params), out, plan, name=Path(out).name, measured=False,
                     label=EAGER_LABEL if eager else LABEL,
                     created=created, extra_meta={"analytic_parameters": params.sources()},
                     clock=lambda: 0.0,  # section times are meaningless here; keeps the files reproducible
                     overrides={"assumed": lambda dev, pl: rows})


def main(argv: list[str] | None = None) -> int:
    """``python -m warmsim.calibrate.analytic [--eager] [--out DIR]``: regenerate a shipped analytic profile."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eager", action="store_true",
                    help=f"the eager-mode variant (vLLM --enforce-eager), default --out profiles/{EAGER_PROFILE_NAME}")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    out = args.out or Path(__file__).resolve().parent / "profiles" / (EAGER_PROFILE_NAME if args.eager else PROFILE_NAME)
    meta = build(out, eager=args.eager)
    print(f"wrote {out} ({sum(s.get('rows', 0) for s in meta['sections'].values())} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
