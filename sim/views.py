"""Snapshot views: what a policy sees of the cluster, kept so that a snapshot costs what changed.

It owns the cached :class:`~warmsim.sim.types.GPUView` s (rebuilt per GPU when its memory or its
instance/replica sets change), the instance views (refreshed for the instances marked changed:
state, in-flight count, idle time), the replica views (rebuilt when a replica is added, becomes
ready or goes), the host-cache sets (rebuilt when a node's cache gains or loses a model) and
:meth:`SnapshotViews.snapshot` itself. Every container handed to a policy is a fresh one (or an
immutable tuple), so a policy cannot reach the caches. It hears of every change from the run's
:class:`~warmsim.sim.state.SimState` (a :class:`~warmsim.sim.state.ViewListener`) and of every memory
change from the GPUs' memory hook (:meth:`SnapshotViews.on_mem_change`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import simpy

from warmsim.sim.memory import KV, PREWARM, GPUMemory
from warmsim.sim.models import ServedModel
from warmsim.sim.types import GPUView, InstanceView, ModelView, ReplicaView, Snapshot

if TYPE_CHECKING:
    from warmsim.sim.cluster import Cluster
    from warmsim.sim.instance import Instance
    from warmsim.sim.load import LoadTracker
    from warmsim.sim.recorder import Recorder
    from warmsim.sim.state import SimState


class SnapshotViews:
    """The snapshot caches of one run (``state``: its instances and replicas; ``load``: the per-model
    load views; ``needs_node_pending``: whether snapshots carry each node's bytes still to move)."""

    def __init__(self, env: simpy.Environment, state: SimState, models: Mapping[str, ServedModel],
                 order: Sequence[str], recorder: Recorder, load: LoadTracker, n_gpus: int,
                 needs_node_pending: bool = False):
        self.env = env
        self.state = state
        self.recorder = recorder
        self.load = load
        self.needs_node_pending = needs_node_pending
        self._gpu_views: list[GPUView | None] = [None] * n_gpus
        self._gpu_dirty: set[int] = set(range(n_gpus))  # views to rebuild
        self._gpu_tuple: tuple[GPUView, ...] | None = None
        self._model_views = {m: ModelView(m, s.weight_bytes, s.tp, s.shard_bytes, s.shape.kv_bytes_per_token)
                             for m, s in models.items()}
        self._all_models = frozenset(order)
        self._inst_views: dict[int, InstanceView] = {}  # non-stopped instances, in creation order
        self.inst_dirty: set[int] = set()
        self._inst_tuple: tuple[InstanceView, ...] | None = None
        self._rep_tuple: tuple[ReplicaView, ...] | None = None
        self._host_cache_map: dict[int, frozenset[str]] | None = None

    def bind_cluster(self, cluster: Cluster) -> None:
        """Called once the cluster exists (it is built with :meth:`on_mem_change`): the GPUs and the
        link tables a snapshot reads."""
        self.cluster = cluster
        self._link_node = {link: n.idx for n in cluster.nodes for link in cluster.node_links(n.idx)}
        self._link_bw = cluster.spec.link_bandwidth()
        self._cache_nodes = [n for n in cluster.nodes if not n.host_cache.everything]

    # ---- changes ----------------------------------------------------------------------------------
    def gpu_changed(self, g: int) -> None:
        """GPU ``g``'s instance or replica set changed."""
        self._gpu_dirty.add(g)
        self._gpu_tuple = None

    def on_mem_change(self, mem: GPUMemory) -> None:
        """Every GPU memory change comes here (``GPUMemory.set``): its view and the timeline."""
        self._gpu_dirty.add(mem.gpu)
        self._gpu_tuple = None
        self.recorder.mem(self.env.now, mem.gpu, mem.used_bytes, mem.kind_bytes(PREWARM), mem.kind_bytes(KV))

    def instance_added(self, inst: Instance) -> None:
        """``inst`` is live: its view joins the snapshot."""
        self._inst_views[inst.id] = inst.view()
        self._inst_tuple = None

    def instance_removed(self, inst: Instance) -> None:
        """``inst`` stopped: its view leaves the snapshot."""
        del self._inst_views[inst.id]
        self._inst_tuple = None

    def replicas_changed(self) -> None:
        """A replica was added, removed or became ready."""
        self._rep_tuple = None

    # ---- the views --------------------------------------------------------------------------------
    def gpu_tuple(self) -> tuple[GPUView, ...]:
        """Every GPU's view, rebuilt where it changed."""
        if self._gpu_tuple is None:
            views, gpus = self._gpu_views, self.cluster.gpus
            for idx in self._gpu_dirty:
                g = gpus[idx]
                views[idx] = GPUView(idx, g.node, g.mem.capacity_bytes, g.mem.used_bytes, g.mem.kind_bytes(PREWARM),
                                     tuple(sorted(g.instances)), tuple(sorted(g.replicas)), g.failed)
            self._gpu_dirty.clear()
            self._gpu_tuple = cast("tuple[GPUView, ...]", tuple(views))  # every view is built by now
        return self._gpu_tuple

    def instance_tuple(self) -> tuple[InstanceView, ...]:
        """The live instances' views, refreshed where marked changed."""
        if self.inst_dirty:
            views, instances = self._inst_views, self.state.instances
            for iid in self.inst_dirty:
                inst = instances.get(iid)
                if inst is not None and iid in views:
                    views[iid] = inst.view()
            self.inst_dirty.clear()
            self._inst_tuple = None
        if self._inst_tuple is None:
            self._inst_tuple = tuple(self._inst_views.values())
        return self._inst_tuple

    def replica_tuple(self) -> tuple[ReplicaView, ...]:
        """The replicas' views."""
        if self._rep_tuple is None:
            self._rep_tuple = tuple(r.view() for r in self.state.replicas.values())
        return self._rep_tuple

    def host_cache_sets(self) -> dict[int, frozenset[str]]:
        """The models in each node's host cache."""
        m = self._host_cache_map
        if m is None or any(n.host_cache.changed for n in self._cache_nodes):
            m = self._host_cache_map = {}
            for n in self.cluster.nodes:
                n.host_cache.changed = False
                m[n.idx] = self._all_models if n.host_cache.everything else frozenset(n.host_cache.entries)
        return dict(m)

    def node_pending(self) -> dict[int, int]:
        """Bytes still to move by flows crossing each node's host-memory, SSD or NIC link (one pass
        over the flows; the same sums, in the same order, as ``net.bytes_pending`` per node)."""
        net = self.cluster.net
        net._advance()
        acc: dict[int, float] = {n.idx: 0 for n in self.cluster.nodes}
        link_node = self._link_node
        for f in net.flows:
            for n in {link_node[link] for link in f.links if link in link_node}:
                acc[n] += f.remaining
        return {n: int(v) for n, v in acc.items()}

    def snapshot(self) -> Snapshot:
        """A read-only picture of the cluster for a policy."""
        now = self.env.now
        pending = {}
        if self.needs_node_pending:
            pending = self.node_pending()
        return Snapshot(
            time_s=now, gpus_per_node=self.cluster.spec.gpus_per_node, gpus=self.gpu_tuple(),
            models=dict(self._model_views),
            instances=self.instance_tuple(),
            replicas=self.replica_tuple(),
            load=self.load.views(now),
            host_cache=self.host_cache_sets(),
            node_pending_load_bytes=pending,
            link_bandwidth=dict(self._link_bw),
            asleep=self.state.asleep_views())
