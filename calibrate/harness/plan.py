"""What one sweep measures: sizes, shapes and repetitions, for the full and the ``--quick`` run.

Budgets are the expected seconds of each section on one H100/H200 (sum ~5 min full, ~1 min quick);
they are reported in the run's log and meta, not enforced.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class SweepPlan:
    """Sweep points of every harness section."""

    name: str
    reps: int  # timed repetitions per point (median of these), after one warm-up
    copy_sizes: tuple[int, ...]
    alloc_points: tuple[tuple[int, int], ...]  # (buffer size, buffers per timing)
    vmm_totals: tuple[int, ...]
    vmm_chunks: tuple[int, ...]
    process_reps: int
    compute_models: tuple[tuple[str, int], ...]  # (catalog shape, tp): the per-GPU shard is measured
    compute_layers: int  # layers per measured stack; costs scale per layer
    prefill_tokens: tuple[int, ...]
    prefill_batches: tuple[int, ...]
    prefill_max_tokens: int  # skip tokens x batch above this
    decode_batches: tuple[int, ...]
    decode_contexts: tuple[int, ...]
    decode_max_kv_tokens: int  # skip batch x context above this (KV memory)
    load_model: str  # shape whose tensors the weight-load and disk sections use
    load_layers: tuple[int, ...]  # two or more layer counts, so fixed and per-tensor costs separate
    disk_layers: tuple[int, ...]  # two or more file sizes, so latency and bandwidth separate
    interference_model: str
    interference_copy_bytes: int
    budgets_s: tuple[tuple[str, float], ...]


FULL = SweepPlan(
    name="full", reps=5,
    copy_sizes=tuple(MIB * 4**k for k in range(7)) + (8 * GIB,),  # 1 MiB .. 4 GiB, 8 GiB
    alloc_points=((MIB, 256), (16 * MIB, 64), (64 * MIB, 32), (256 * MIB, 8), (GIB, 2), (4 * GIB, 1)),
    vmm_totals=(256 * MIB, GIB, 4 * GIB),
    vmm_chunks=(2 * MIB, 8 * MIB, 32 * MIB, 128 * MIB, 512 * MIB),
    process_reps=3,
    compute_models=(("llama-2-7b", 1), ("llama-3-8b", 1), ("llama-2-13b", 1), ("llama-2-13b", 2), ("llama-2-70b", 2),
                    ("llama-2-70b", 4), ("llama-2-70b", 8)),
    compute_layers=2,
    prefill_tokens=(1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192),
    prefill_batches=(1, 4),
    prefill_max_tokens=16384,
    decode_batches=(1, 4, 16, 64, 256),
    decode_contexts=(128, 512, 2048, 4096),
    decode_max_kv_tokens=262144,
    load_model="llama-2-7b", load_layers=(1, 4), disk_layers=(1, 6),
    interference_model="llama-2-7b", interference_copy_bytes=2 * GIB,
    budgets_s=(("copy", 30), ("alloc", 20), ("vmm", 20), ("process", 20), ("prefill", 50), ("decode", 50),
               ("weight_load", 25), ("disk", 45), ("interference", 20), ("assumed", 0)),
)

QUICK = SweepPlan(
    name="quick", reps=3,
    copy_sizes=(MIB, 16 * MIB, 256 * MIB, GIB),
    alloc_points=((MIB, 64), (64 * MIB, 8), (GIB, 1)),
    vmm_totals=(256 * MIB,),
    vmm_chunks=(2 * MIB, 32 * MIB),
    process_reps=1,
    compute_models=(("llama-2-7b", 1),),
    compute_layers=2,
    prefill_tokens=(1, 32, 256, 1024, 4096),
    prefill_batches=(1,),
    prefill_max_tokens=8192,
    decode_batches=(1, 16, 128),
    decode_contexts=(256, 2048),
    decode_max_kv_tokens=262144,
    load_model="llama-2-7b", load_layers=(1, 2), disk_layers=(1, 2),
    interference_model="llama-2-7b", interference_copy_bytes=512 * MIB,
    budgets_s=(("copy", 8), ("alloc", 8), ("vmm", 3), ("process", 8), ("prefill", 8), ("decode", 8),
               ("weight_load", 5), ("disk", 10), ("interference", 5), ("assumed", 0)),
)

PLANS = {"full": FULL, "quick": QUICK}
