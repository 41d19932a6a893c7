"""Numbers a one-GPU harness cannot measure, written to every profile's ``assumed.csv``.

They describe the rest of the node (NVLink, NIC) and the serving engine being modelled (vLLM-like
start-up work). Each is a named field with its source; a profile may override any of them by
editing its ``assumed.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: (unit, source) of each field of :class:`Assumptions`. Start-stage fields: the stage of
#: :data:`warmsim.sim.startup.COST_STAGES` each belongs to, and where the artifact pays it, are in
#: docs/warmserve.md ("The start path"); their ranges in docs/calibration.md.
_DOC: dict[str, tuple[str, str]] = {
    "nvlink_bytes_per_s": ("bytes/s", "H100 SXM NVLink4: 450 GB/s per direction; NCCL all-reduce bus "
                                      "bandwidth ~360 GB/s on 8-GPU HGX (nccl-tests class numbers)"),
    "allreduce_latency_s": ("s", "NCCL small-message all-reduce latency inside one NVLink node, ~15 us"),
    "nic_bytes_per_s": ("bytes/s", "one 200 Gb/s NIC per node (remote weight source)"),
    "page_cache_read_bytes_per_s": ("bytes/s", "reading a safetensors shard from the page cache into pageable "
                                               "CPU tensors, one loader thread: derived from vLLM's load of "
                                               "Llama-2-7B at 1.7 GiB/s read plus pageable copy on an A100 host "
                                               "(upb-cn/vllm-startup-profiler log, arXiv 2606.07362) and ~0.9 GB/s "
                                               "per rank from a hot page cache (vllm-project/vllm#19824, "
                                               "second-hand); range 1-6 GB/s"),
    "engine_import_s": ("s", "engine_process: the serving engine's imports beyond torch; `import vllm` took "
                             "5.9 s including `import torch` 1.5-2 s before vllm-project/vllm#15128 (vLLM 0.8); "
                             "0.6.3 predates it"),
    "engine_config_s": ("s", "engine_prepare: argument parsing and engine configuration (HF config.json), CPU "
                             "only (ours)"),
    "tokenizer_s": ("s", "engine_prepare: HF tokenizer load; 0.13 s for Llama-2-7B on an A100 host "
                         "(upb-cn/vllm-startup-profiler log); the artifact does not pre-load it "
                         "(PrewarmManager.__init__, commented out)"),
    "worker_handoff_s": ("s", "engine_prepare: (8 + TP) Ray round trips at ~0.5 ms (Ray release microbenchmark "
                              "1_1_actor_calls_sync) plus Worker/ModelRunner construction (ours)"),
    "model_init_s": ("s", "engine_init: the model object on the meta device with the loaded tensors substituted "
                          "(ours; vLLM's 'Initializing Model' 0.21 s in the upb-cn log allocates on the GPU: an "
                          "upper bound)"),
    "kv_setup_s": ("s", "engine_init: CacheEngine and scheduler over the KV range (ours)"),
    "api_server_s": ("s", "engine_init: the OpenAI server's app and listening socket; engine ready to server up "
                          "within ~1 s (vllm-project/vllm#20707, 1-s log resolution)"),
    "engine_cuda_graphs": ("count", "cuda_graphs: decode batch sizes captured as CUDA graphs (vLLM default ~35)"),
    "engine_graph_overhead_s": ("s", "cuda_graphs: per captured graph on top of one decode step (capture + "
                                     "instantiate)"),
    "tp_comm_init_s": ("s", "tp_comm, TP > 1: ncclCommInitRank for 8 ranks in one node 0.66 s "
                            "(NVIDIA/nccl-tests#273) plus vLLM's groups"),
    "tp1_group_init_s": ("s", "tp_comm, TP 1: a distributed world of one rank (gloo and NCCL groups) (ours)"),
    "mean_tensor_bytes": ("bytes", "average weight tensor size, turns bytes into a tensor count for "
                                   "per-tensor costs (Llama-2-7B: 13.5 GB / 291 tensors ~ 46 MB)"),
    "sleep_call_s": ("s", "engine_wake: the fixed part of a vLLM sleep-mode sleep or wake call; derived from "
                          "the level-1 wake of Qwen3-0.6B on an A100, 0.25-0.28 s (blog.vllm.ai/2025/10/26/"
                          "sleep-mode.html, plotly-sleep-levels-comparison.js), less its ~1.2 GB copy at "
                          "~21 GB/s (0.06 s) and ~310 cuMemCreate+Map+SetAccess at 0.23 ms (0.07 s; "
                          "ovg-project/kvcached benchmarks/bench_vmm, A100)"),
    "pipeline_hop_s": ("s", "one hand-off of activations between pipeline stages on two servers (TCP between "
                            "pods): HydraServe's planner adds 1 ms per extra stage to the predicted TPOT "
                            "(LLMServe/hydraserve scripts/kubernetes/vllm/src/algs.py, ours)"),
}


@dataclass(frozen=True)
class Assumptions:
    """Unmeasurable parameters with their defaults (see ``_DOC`` for the source of each)."""

    nvlink_bytes_per_s: float = 360e9
    allreduce_latency_s: float = 15e-6
    nic_bytes_per_s: float = 25e9
    page_cache_read_bytes_per_s: float = 2.5e9
    engine_import_s: float = 4.0
    engine_config_s: float = 0.1
    tokenizer_s: float = 0.15
    worker_handoff_s: float = 0.1
    model_init_s: float = 0.1
    kv_setup_s: float = 0.02
    api_server_s: float = 0.3
    engine_cuda_graphs: float = 35
    engine_graph_overhead_s: float = 0.05
    tp_comm_init_s: float = 0.5
    tp1_group_init_s: float = 0.1
    mean_tensor_bytes: float = 48 * 2**20
    sleep_call_s: float = 0.13
    pipeline_hop_s: float = 1e-3

    def rows(self) -> list[dict]:
        """``assumed.csv`` rows: parameter, value, unit, source."""
        return [{"parameter": f.name, "value": float(getattr(self, f.name)), "unit": _DOC[f.name][0],
                 "source": _DOC[f.name][1]} for f in fields(self)]

    @classmethod
    def from_rows(cls, rows: list[dict]) -> Assumptions:
        """Defaults overridden by the profile's ``assumed.csv`` rows (unknown parameters ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{r["parameter"]: float(r["value"]) for r in rows if r["parameter"] in names})
