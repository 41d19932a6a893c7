"""The policy contract's data: snapshots (what a policy sees) and plans (what it returns).

They live in the simulator, which builds and verifies them; policies (``warmsim.policies``) read
and return them (``warmsim.sim.types`` re-exports this module).

All dataclasses are frozen: a policy cannot change the cluster through them. The simulator builds a
:class:`Snapshot` at each decision point and verifies every action before applying it (memory
budget, no GPU given twice, a TP group inside one node); a bad action raises ``sim.errors.PlanError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Instance lifecycle states, in order. A request routed to a starting/loading/initialising
# instance waits in its queue, and its TTFT includes the wait.
STARTING, LOADING, INITIALISING, ACTIVE, DRAINING, STOPPED = (
    "starting", "loading", "initialising", "active", "draining", "stopped")
LIVE_STATES = (STARTING, LOADING, INITIALISING, ACTIVE)


@dataclass(frozen=True)
class ModelView:
    """A served model as policies see it."""

    name: str
    weight_bytes: int
    tp: int
    shard_bytes: int  # per-GPU weight bytes, 2 MiB aligned
    kv_bytes_per_token: int = 0  # KV-cache bytes per token, whole model (all TP shards)


@dataclass(frozen=True)
class GPUView:
    """One GPU. ``capacity_bytes`` is what the memory pool may hand out; ``used_bytes`` counts
    weights and KV of instances plus prewarmed replicas (loading ones included)."""

    id: int
    node: int
    capacity_bytes: int
    used_bytes: int
    prewarm_bytes: int = 0
    instances: tuple[int, ...] = ()
    replicas: tuple[int, ...] = ()
    #: The GPU failed (a fault): it counts as busy and has no free memory; nothing goes there again.
    failed: bool = False

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self.used_bytes


@dataclass(frozen=True)
class InstanceView:
    """A serving instance (a dedicated worker, or a MuxServe-style colocated engine)."""

    id: int
    model: str
    gpus: tuple[int, ...]
    state: str
    inflight: int  # requests admitted or queued at this instance
    created_s: float
    compute_share: float = 1.0
    #: When its in-flight count last dropped to 0 (or it became active, if it never served); None
    #: while it has requests. Keep-alive counts idle time from here. History, not a picture of the
    #: present, so it takes no part in comparing views.
    idle_since: float | None = field(default=None, compare=False)
    #: Its engine's cap on sequences (``Activate.max_num_seqs``); ``None``: the run's default.
    max_num_seqs: int | None = None


@dataclass(frozen=True)
class ReplicaView:
    """Prewarmed weights of ``model`` on ``gpus`` (a universal worker's backup copy)."""

    id: int
    model: str
    gpus: tuple[int, ...]
    ready: bool  # False while its weights are still loading
    bytes_per_gpu: int


@dataclass(frozen=True)
class SleeperView:
    """A suspended engine of ``model`` on ``gpus`` (vLLM sleep mode, ``sim/mechanisms/sleep.py``): its
    process and CUDA context stay, its weights are in host memory (``level`` 1) or gone (``level``
    2), its KV cache is gone. Waking it (``Activate.wake``) skips every start stage but the wake call,
    the weights and the KV allocation."""

    id: int
    model: str
    gpus: tuple[int, ...]
    level: int
    since_s: float  # when it fell asleep


@dataclass(frozen=True)
class LoadView:
    """Per-model load signals the autoscaler and placement read."""

    inflight: int  # requests in the system for this model now (queued + running)
    avg_inflight: float  # time-averaged inflight over the autoscaler's window
    waiting: int  # requests held by the router because no instance had room
    instances: int  # live instances (starting .. active)
    pending_starts: int = 0  # instances starting, loading or initialising


@dataclass(frozen=True)
class Snapshot:
    """The cluster at one instant, read-only."""

    time_s: float
    gpus_per_node: int
    gpus: tuple[GPUView, ...]
    models: Mapping[str, ModelView]
    instances: tuple[InstanceView, ...] = ()
    replicas: tuple[ReplicaView, ...] = ()
    load: Mapping[str, LoadView] = field(default_factory=dict)
    #: Models whose checkpoint sits in each node's pinned host-memory cache.
    host_cache: Mapping[int, frozenset[str]] = field(default_factory=dict)
    #: Bytes still to move on each node's weight-loading links (loads queued or in flight there).
    node_pending_load_bytes: Mapping[int, int] = field(default_factory=dict)
    #: The cluster's link capacities in bytes/s by kind (see ``sim.cost.LINKS``).
    link_bandwidth: Mapping[str, float] = field(default_factory=dict)
    #: Suspended engines (systems with the ``sleep`` mechanism; empty otherwise).
    asleep: tuple[SleeperView, ...] = ()

    def gpu(self, gpu_id: int) -> GPUView:
        return self.gpus[gpu_id]

    @property
    def n_nodes(self) -> int:
        return len(self.gpus) // self.gpus_per_node

    def node_gpus(self, node: int) -> range:
        """GPU ids of ``node`` (GPUs are numbered node by node)."""
        return range(node * self.gpus_per_node, (node + 1) * self.gpus_per_node)

    def live_by_model(self) -> dict[str, list[InstanceView]]:
        """Live instances (starting .. active) of each model, in snapshot order."""
        out: dict[str, list[InstanceView]] = {}
        for inst in self.instances:
            if inst.state in LIVE_STATES:
                out.setdefault(inst.model, []).append(inst)
        return out

    def busy_gpus(self) -> frozenset[int]:
        """GPUs that hold an instance that has not stopped (draining ones included), and failed GPUs."""
        busy = {g for inst in self.instances if inst.state != STOPPED for g in inst.gpus}
        busy.update(g.id for g in self.gpus if g.failed)
        return frozenset(busy)

    def free_gpus_by_node(self) -> list[list[int]]:
        """Per node, in id order, its GPUs that hold no instance that has not stopped."""
        busy = self.busy_gpus()
        return [[g for g in self.node_gpus(n) if g not in busy] for n in range(self.n_nodes)]


# ---- plans ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Activate:
    """Start an instance of ``model`` on ``gpus``.

    ``replica`` names a prewarmed replica on exactly those GPUs to take over (a hit), else the
    weights load from ``source`` (one of ``sim.cost.SOURCES``). The simulator evicts every other
    prewarmed replica overlapping ``gpus`` when the policy's bundle says activation evicts.
    ``compute_share`` and ``kv_bytes_per_gpu`` are for GPU sharing (MuxServe); ``None`` KV means
    "all memory left on the GPUs after weights". With a peer source (``peer_nvlink`` inside a node,
    ``peer_rdma`` across nodes) ``peer`` names the running instance of the same model whose GPUs the
    shards are copied from, shard ``i`` from its GPU ``i``.
    """

    model: str
    gpus: tuple[int, ...]
    source: str = "host_pinned"
    replica: int | None = None
    compute_share: float = 1.0
    kv_bytes_per_gpu: int | None = None
    peer: int | None = None
    #: Tensor-parallel degree of this instance; ``None``: the model's configured ``tp``. MuxServe
    #: runs a model at TP = the size of its mesh.
    tp: int | None = None
    #: Cap on sequences this instance's engine runs at once and the router sends it; ``None``: the
    #: run's ``engine.max_num_seqs``. MuxServe sets it per model from its throughput estimator.
    max_num_seqs: int | None = None
    #: Wake this suspended engine (a :class:`SleeperView` id of ``model`` on exactly ``gpus``) instead of
    #: starting a new one; ``source`` is where its weights come back from (``sim/mechanisms/sleep.py``).
    wake: int | None = None
    #: A pipeline across servers (HydraServe, ``sim/mechanisms/pipeline.py``): the GPU groups of its
    #: later stages, each a TP group of ``tp`` GPUs on another node; ``gpus`` is the first stage, which
    #: holds memory for the whole model so that the pipeline can later consolidate onto it.
    stages: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class Prewarm:
    """Load ``model``'s weights in the background onto ``gpus`` as a prewarmed replica."""

    model: str
    gpus: tuple[int, ...]
    source: str = "host_pinned"


@dataclass(frozen=True)
class Evict:
    """Drop prewarmed replica ``replica``."""

    replica: int


@dataclass(frozen=True)
class ScaleDecision:
    """What the autoscaler wants: ``start[model]`` new instances and the instances to drain."""

    start: Mapping[str, int] = field(default_factory=dict)
    stop: tuple[int, ...] = ()
