"""What one instance start costs, stage by stage, from a cost model.

A start is the serving engine's start path (vLLM 0.6 as WarmServe's artifact runs it; every stage
and its source is in ``docs/warmserve.md``, "The start path"). A system's mechanisms
(:class:`StartPath`) say which stages it has already paid before a request needs the instance; the
cost model says what the others take. The simulator charges the same stages in the same order
(``sim/instance.py``), replacing the isolated transfer by its flow network when loads overlap, and
``warmsim estimate`` answers from :func:`startup_breakdown` (one load alone on an idle node), so both
use one set of formulas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from warmsim.sim.cost import COST_STAGES, CostModel  # noqa: F401 (COST_STAGES: the stages priced)
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.sim.models import ServedModel
from warmsim.sim.sources import SOURCES

#: Memory-switch mechanisms: how a GPU's memory is made ready for new weights (:mod:`warmsim.sim.memswitch`).
MEMSWITCH_NAMES = tuple(MEMSWITCHES)

@dataclass(frozen=True)
class StartPath:
    """Which start stages a system has paid before an instance is asked for (its mechanisms).

    Attributes:
        device_prewarm: worker processes with a CUDA context already exist on every GPU.
        engine_prewarm: a pool of serving-engine processes has done its imports.
        comm_prewarm: a prewarmed replica brings its TP communicator (a load pays it).
        profile_run: the engine runs its KV profiling forward of ``max_batched_tokens`` tokens.
        kv_prewarm: with a VMM pool, the first step waits only for the KV blocks it needs, not
            for the whole KV range to be mapped.
        overlap_load: the weight load runs while the engine prepares (configuration, tokenizer,
            worker hand-off); otherwise the stages follow one another.
        ready_poll_s: the router finds a started engine by polling every this many seconds from
            the start (0: it is told at once).
        prefetch: the weights start moving when the instance is created (a node-side prefetcher
            pulls them while the process starts, the engine imports and prepares; HydraServe), and
            the TP communicator is built once both are done; ``overlap_load`` is then moot.
    """

    device_prewarm: bool = False
    engine_prewarm: bool = False
    comm_prewarm: bool = False
    profile_run: bool = True
    kv_prewarm: bool = False
    overlap_load: bool = False
    ready_poll_s: float = 0.0
    prefetch: bool = False


@dataclass(frozen=True)
class StartStages:
    """Seconds of the fixed stages of one start (everything but moving the weights), in path order."""

    process_s: float  # worker process, import torch, CUDA context, first GEMM
    engine_process_s: float  # engine process and imports
    engine_prepare_s: float  # configuration, tokenizer, worker hand-off
    tp_comm_s: float  # TP communicator (after the load when the load pays it)
    engine_init_s: float  # model object, engine construction, KV set-up, API server
    kv_profile_s: float  # the profiling forward
    kv_alloc_s: float  # KV-cache allocation or mapping the first step waits for
    cuda_graphs_s: float  # CUDA-graph capture

    @property
    def after_load_s(self) -> float:
        """The stages between the weights being in place and the engine serving."""
        return self.engine_init_s + self.kv_profile_s + self.kv_alloc_s + self.cuda_graphs_s


def start_stages(cost: CostModel, model: ServedModel, path: StartPath, engine, memswitch: str, kv_bytes: int,
                 from_replica: bool) -> StartStages:
    """The fixed stages of one start of ``model`` (``engine``: the engine limits; ``kv_bytes``: its KV
    cache per GPU; ``from_replica``: the weights are a prewarmed replica's)."""
    if path.profile_run:
        tokens = int(engine.max_batched_tokens)
        profile = cost.prefill_s(model, tokens, max(1, min(int(engine.max_num_seqs), tokens)))
    else:
        profile = 0.0
    ms = MEMSWITCHES[memswitch]
    return StartStages(
        process_s=0.0 if path.device_prewarm else cost.process_start_s(),
        engine_process_s=0.0 if path.engine_prewarm else cost.stage_s("engine_process", model),
        engine_prepare_s=cost.stage_s("engine_prepare", model),
        tp_comm_s=0.0 if (path.comm_prewarm and from_replica) else cost.stage_s("tp_comm", model),
        engine_init_s=cost.stage_s("engine_init", model),
        kv_profile_s=profile,
        kv_alloc_s=ms.kv_alloc_s(cost, kv_bytes, path.kv_prewarm),
        cuda_graphs_s=cost.stage_s("cuda_graphs", model),
    )


def poll_delay_s(elapsed_s: float, poll_s: float) -> float:
    """Time from an engine being up, ``elapsed_s`` after its start, to the router's next poll
    (polls at 0, ``poll_s``, 2 ``poll_s``, ... after the start)."""
    if poll_s <= 0:
        return 0.0
    # An engine up a hair after a poll (within the tolerance) is found at that poll: no negative wait.
    return max(0.0, math.ceil(elapsed_s / poll_s - 1e-9) * poll_s - elapsed_s)


def isolated_transfer_s(model: ServedModel, source: str, bandwidth: Mapping[str, float]) -> float:
    """Time to move all TP shards of ``model`` from ``source`` when nothing else is moving.

    ``bandwidth`` maps a link kind to its capacity (a cluster's :meth:`~warmsim.sim.cluster.ClusterSpec.link_bandwidth`).
    The shards travel in parallel over one PCIe link per GPU but share the node's source link; each
    flow is also held to the source's own per-flow ceiling, exactly as the flow network holds it.
    """
    if source not in SOURCES:
        raise KeyError(source)
    src = SOURCES[source]
    kinds = src.link_kinds
    if kinds is None:
        return 0.0
    node_link, gpu_link = kinds
    per_flow = min(bandwidth[gpu_link], src.ceiling(bandwidth))
    if node_link is not None:
        per_flow = min(per_flow, bandwidth[node_link] / model.tp)
    return model.shard_bytes / per_flow


@dataclass(frozen=True)
class StartupBreakdown:
    """Seconds spent in each stage of one start, in path order, and how they add up."""

    process_s: float
    engine_process_s: float
    engine_prepare_s: float
    memory_s: float  # cudaMalloc of fresh buffers, or VMM mapping not hidden behind the copy
    transfer_s: float  # moving the weight bytes (0 from a ready replica)
    load_overhead_s: float  # fixed per-load cost of the source (file open, per-tensor launches)
    tp_comm_s: float
    engine_init_s: float
    kv_profile_s: float
    kv_alloc_s: float
    cuda_graphs_s: float
    ready_poll_s: float  # the router's poll finding the engine up
    overlap_load: bool = False  # the load (memory .. TP communicator) ran beside engine_prepare
    prefetch: bool = False  # the weights (memory .. overhead) ran from the start, beside process .. engine_prepare

    @property
    def load_s(self) -> float:
        """Weights in place and the communicator built: the part that may overlap engine_prepare."""
        return self.memory_s + self.transfer_s + self.load_overhead_s + self.tp_comm_s

    @property
    def total_s(self) -> float:
        if self.prefetch:
            weights = self.memory_s + self.transfer_s + self.load_overhead_s
            head = self.process_s + self.engine_process_s + self.engine_prepare_s
            return (max(head, weights) + self.tp_comm_s + self.engine_init_s + self.kv_profile_s + self.kv_alloc_s
                    + self.cuda_graphs_s + self.ready_poll_s)
        middle = (max(self.engine_prepare_s, self.load_s) if self.overlap_load
                  else self.engine_prepare_s + self.load_s)
        return (self.process_s + self.engine_process_s + middle + self.engine_init_s + self.kv_profile_s
                + self.kv_alloc_s + self.cuda_graphs_s + self.ready_poll_s)

    def as_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["total_s"] = self.total_s
        return d


def startup_breakdown(cost: CostModel, model: ServedModel, source: str, path: StartPath, engine, *,
                      memswitch: str = "free_malloc", bandwidth: Mapping[str, float] | None = None,
                      kv_bytes: int = 0) -> StartupBreakdown:
    """Stages of one start of ``model`` with weights from ``source``, alone on its node: the lone
    start the simulator charges (``source='prewarmed'``: a ready replica taken over).

    ``bandwidth`` maps a link kind to its capacity (a cluster's links; default: the cost model's).
    """
    from warmsim.sim.cost import LINKS

    bw = dict(bandwidth) if bandwidth is not None else {k: cost.link_bandwidth(k) for k in LINKS}
    src = SOURCES[source]
    from_replica = src.link_kinds is None
    st = start_stages(cost, model, path, engine, memswitch, kv_bytes, from_replica)
    ms = MEMSWITCHES[memswitch]
    if from_replica:
        transfer = overhead = 0.0
        memory = ms.on_adopt_s(cost, 0.0) or 0.0
    else:
        transfer = isolated_transfer_s(model, source, bw)
        overhead = cost.load_overhead_s(source, model.shard_bytes)
        memory = (ms.before_load_s(cost, model.shard_bytes, 0.0) or 0.0) + (
            ms.after_load_s(cost, model.shard_bytes, transfer) or 0.0)
    bd = StartupBreakdown(st.process_s, st.engine_process_s, st.engine_prepare_s, memory, transfer, overhead,
                          st.tp_comm_s, st.engine_init_s, st.kv_profile_s, st.kv_alloc_s, st.cuda_graphs_s,
                          0.0, path.overlap_load, path.prefetch and not from_replica)
    up = bd.total_s
    return StartupBreakdown(**{**asdict(bd), "ready_poll_s": poll_delay_s(up, path.ready_poll_s)})
