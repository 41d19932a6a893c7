"""Numbers a one-GPU harness cannot measure, written to every profile's ``assumed.csv``.

They describe the rest of the node (NVLink, NIC) and the serving engine being modelled (vLLM-like
start-up work). Each is a named field with its source; a profile may override any of them by
editing its ``assumed.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: (unit, source) of each field of :class:`Assumptions`.
_DOC: dict[str, tuple[str, str]] = {
    "nvlink_bytes_per_s": ("bytes/s", "H100 SXM NVLink4: 450 GB/s per direction; NCCL all-reduce bus "
                                      "bandwidth ~360 GB/s on 8-GPU HGX (nccl-tests class numbers)"),
    "allreduce_latency_s": ("s", "NCCL small-message all-reduce latency inside one NVLink node, ~15 us"),
    "nic_bytes_per_s": ("bytes/s", "one 200 Gb/s NIC per node (remote weight source)"),
    "engine_framework_s": ("s", "serving-engine construction without model-dependent work: worker set-up, "
                                "scheduler, tokenizer (vLLM-class, a few seconds)"),
    "engine_warmup_tokens": ("tokens", "profiling forward at max_num_batched_tokens (vLLM default 8192)"),
    "engine_cuda_graphs": ("count", "decode batch sizes captured as CUDA graphs (vLLM default ~35)"),
    "engine_graph_overhead_s": ("s", "per captured graph on top of one decode step (capture + instantiate)"),
    "tp_comm_init_s": ("s", "NCCL communicator creation for a TP group (>1 GPU)"),
    "mean_tensor_bytes": ("bytes", "average weight tensor size, turns bytes into a tensor count for "
                                   "per-tensor costs (Llama-2-7B: 13.5 GB / 291 tensors ~ 46 MB)"),
}


@dataclass(frozen=True)
class Assumptions:
    """Unmeasurable parameters with their defaults (see ``_DOC`` for the source of each)."""

    nvlink_bytes_per_s: float = 360e9
    allreduce_latency_s: float = 15e-6
    nic_bytes_per_s: float = 25e9
    engine_framework_s: float = 4.0
    engine_warmup_tokens: float = 8192
    engine_cuda_graphs: float = 35
    engine_graph_overhead_s: float = 0.05
    tp_comm_init_s: float = 2.0
    mean_tensor_bytes: float = 48 * 2**20

    def rows(self) -> list[dict]:
        """``assumed.csv`` rows: parameter, value, unit, source."""
        return [{"parameter": f.name, "value": float(getattr(self, f.name)), "unit": _DOC[f.name][0],
                 "source": _DOC[f.name][1]} for f in fields(self)]

    @classmethod
    def from_rows(cls, rows: list[dict]) -> "Assumptions":
        """Defaults overridden by the profile's ``assumed.csv`` rows (unknown parameters ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{r["parameter"]: float(r["value"]) for r in rows if r["parameter"] in names})
