"""ServerlessLLM's startup-time-optimised server choice (OSDI'24, section 5; open scheduler).

For every node with room for the model, estimate how long its weights would take to arrive from the
fastest tier that node has them in, and start the instance on the node with the smallest estimate.
The estimate follows the open scheduler's formula, not the simulator's flow network: ServerlessLLM
decides on a rough, fixed model of bandwidth, and the gap between that model and what really happens
is part of what the baseline is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from warmsim.policies.types import Activate, Snapshot
from warmsim.sim.errors import UserError
from warmsim.sim.knobs import Knob, bounded, flag, positive

#: Tiers a ServerlessLLM load can come from, fastest first, as ``sim.cost.SOURCES`` names them.
HOST, SSD, REMOTE = "host_pinned", "ssd", "remote"


@dataclass(frozen=True)
class LoadEstimate:
    """One node's estimated start of a model: where from and how long (seconds)."""

    node: int
    source: str
    seconds: float


@dataclass(frozen=True)
@bounded(ssd_checkpoints=Knob("mapping", null=True, help="node -> checkpoints on its SSD; null = all on every node"),
         assumed_pcie_bw=positive("host->GPU bytes/s the estimate assumes", 1e15),
         disk_bw=positive("SSD->GPU bytes/s the estimate assumes; null = the link's", 1e15, null=True),
         remote_bw=positive("remote-download bytes/s; null = the NIC's", 1e15, null=True),
         host_cache_enabled=flag("whether the pinned host-memory cache counts"),
         remote_enabled=flag("whether a node may download from remote storage"),
         host_hit_waits=flag("whether host-cache hits wait for the node's loading queue"))
class SllmActivator:
    """Start an instance where ServerlessLLM's scheduler estimates its weights arrive first.

    For each node with ``tp`` free GPUs (no live instance on them):

    - checkpoint in the node's pinned host-memory cache (``snap.host_cache``): ``size / assumed_pcie_bw``
      (plus the node's queue wait only when ``host_hit_waits``), source ``host_pinned``;
    - else on the node's local SSD: ``queue_wait + size / disk_bw``, source ``ssd``;
    - else, only when ``remote_enabled``: ``queue_wait + size / remote_bw``, source ``remote``;
      otherwise the node is skipped, as the open scheduler skips nodes without a local checkpoint.

    ``queue_wait = snap.node_pending_load_bytes[node] / disk_bw``: ServerlessLLM keeps a per-node
    waiting time that grows by each queued disk load's estimated time. ``size`` is the whole model's
    weight bytes (the open scheduler divides the full checkpoint size by one bandwidth).
    The node with the smallest estimate wins (ties: lowest node id); the instance takes that node's
    lowest-numbered free GPUs. ``None`` when no node has room (the request waits and the autoscaler
    retries next period).
    """

    #: ServerlessLLM starts from checkpoints, never from a prewarmed replica (policies/base.py Activator).
    adopts_replicas: ClassVar[bool] = False

    #: Host->GPU bandwidth the estimate assumes, bytes/s. Default 25e9: the open scheduler hard-codes
    #: 25 GB/s (PCIe 4.0 x16) regardless of the real link.
    assumed_pcie_bw: float = 25e9
    #: SSD->GPU bandwidth the estimate assumes, bytes/s. ``None``: the snapshot's ``ssd_read`` link
    #: capacity (ServerlessLLM measures its disk bandwidth at start-up, i.e. it knows the real number).
    disk_bw: float | None = None
    #: Remote-download bandwidth, bytes/s, used only with ``remote_enabled``. ``None``: the snapshot's
    #: ``nic`` link capacity.
    remote_bw: float | None = None
    #: Whether the pinned host-memory cache counts. ``False`` is the ``sllm_ssd`` variant: every
    #: load comes from SSD whatever the cache holds.
    host_cache_enabled: bool = True
    #: Which checkpoints each node's SSD holds. ``None`` (default): every checkpoint on every node's
    #: SSD, the usual ServerlessLLM deployment once models are registered.
    ssd_checkpoints: Mapping[int, frozenset[str]] | None = None
    #: Whether a node without a local copy may download from remote storage. Default ``False``: the
    #: open scheduler does not estimate remote downloads and never picks such a node.
    remote_enabled: bool = False
    #: Whether host-cache hits also wait for the node's loading queue. Default ``False``, as in the
    #: open scheduler (the waiting time is added only on the disk path).
    host_hit_waits: bool = False

    # -- estimates ---------------------------------------------------------------------------------

    def _bandwidth(self, snap: Snapshot, value: float | None, link: str, knob: str) -> float:
        if value is not None:
            return value
        bw = snap.link_bandwidth.get(link)
        if bw is None or not bw > 0:
            raise UserError(f"sllm activator: {knob} is not set and the cluster gives no '{link}' "
                            f"link bandwidth; set {knob} (bytes/s)")
        return bw

    def estimate(self, snap: Snapshot, model: str, node: int) -> LoadEstimate | None:
        """Estimated start of ``model`` on ``node`` from its fastest tier, or ``None`` when the node
        has no copy the policy may load from (room on the node is not checked here)."""
        size = snap.models[model].weight_bytes
        disk_bw = self._bandwidth(snap, self.disk_bw, "ssd_read", "disk_bw")
        queue_wait = snap.node_pending_load_bytes.get(node, 0) / disk_bw
        if self.host_cache_enabled and model in snap.host_cache.get(node, frozenset()):
            wait = queue_wait if self.host_hit_waits else 0.0
            return LoadEstimate(node, HOST, wait + size / self.assumed_pcie_bw)
        if self.ssd_checkpoints is None or model in self.ssd_checkpoints.get(node, frozenset()):
            return LoadEstimate(node, SSD, queue_wait + size / disk_bw)
        if self.remote_enabled:
            remote_bw = self._bandwidth(snap, self.remote_bw, "nic", "remote_bw")
            return LoadEstimate(node, REMOTE, queue_wait + size / remote_bw)
        return None

    # -- the Activator protocol ---------------------------------------------------------------------

    def choose(self, snap: Snapshot, model: str) -> Activate | None:
        """Where one new instance of ``model`` starts, or ``None`` if no node has room."""
        tp = snap.models[model].tp
        best: tuple[float, int] | None = None
        best_plan: Activate | None = None
        for node, free in enumerate(snap.free_gpus_by_node()):
            if len(free) < tp:
                continue
            est = self.estimate(snap, model, node)
            if est is None:
                continue
            key = (est.seconds, node)
            if best is None or key < best:
                best = key
                best_plan = Activate(model=model, gpus=tuple(free[:tp]), source=est.source)
        return best_plan
