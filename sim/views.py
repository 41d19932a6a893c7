"""Snapshot views: what a policy sees of the cluster, kept so that a snapshot costs what changed.

It owns the cached :class:`~warmsim.sim.types.GPUView` s (rebuilt per GPU when its memory or its
instance/replica sets change), the instance views (refreshed for the instances marked changed:
state, in-flight count, idle time), the replica views (rebuilt when a replica is added, becomes
ready or goes), the host-cache sets (rebuilt when a node's cache gains or loses a model) and
:meth:`SnapshotViews.snapshot` itself. Every container handed to a policy is a fresh one (or an
immutable tuple), so a policy cannot reach the caches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warmsim.sim.memory import KV, PREWARM
from warmsim.sim.types import GPUView, InstanceView, ModelView, ReplicaView, Snapshot

if TYPE_CHECKING:
    from warmsim.sim.instance import Instance
    from warmsim.sim.simulation import Simulation


class SnapshotViews:
    """The snapshot caches of one run (``sim`` holds the cluster, instances and replicas)."""

    def __init__(self, sim: Simulation, n_gpus: int):
        self.sim = sim
        self._gpu_views: list[GPUView | None] = [None] * n_gpus
        self._gpu_dirty: set[int] = set(range(n_gpus))  # views to rebuild
        self._gpu_tuple: tuple[GPUView, ...] | None = None
        self._model_views = {m: ModelView(m, s.weight_bytes, s.tp, s.shard_bytes, s.shape.kv_bytes_per_token)
                             for m, s in sim.models.items()}
        self._all_models = frozenset(sim.order)
        self._inst_views: dict[int, InstanceView] = {}  # non-stopped instances, in creation order
        self.inst_dirty: set[int] = set()
        self._inst_tuple: tuple[InstanceView, ...] | None = None
        self._rep_tuple: tuple[ReplicaView, ...] | None = None
        self._host_cache_map: dict[int, frozenset[str]] | None = None

    def bind_cluster(self) -> None:
        """Called once the cluster exists: the link tables a snapshot reads."""
        cluster = self.sim.cluster
        self._link_node = {link: n.idx for n in cluster.nodes for link in cluster.node_links(n.idx)}
        self._link_bw = cluster.spec.link_bandwidth()
        self._cache_nodes = [n for n in cluster.nodes if not n.host_cache.everything]

    # ---- changes ----------------------------------------------------------------------------------
    def gpu_changed(self, g: int) -> None:
        """GPU ``g``'s instance or replica set changed."""
        self._gpu_dirty.add(g)
        self._gpu_tuple = None

    def on_mem_change(self, mem) -> None:
        """Every GPU memory change comes here (``GPUMemory.set``): its view and the timeline."""
        self._gpu_dirty.add(mem.gpu)
        self._gpu_tuple = None
        self.sim.recorder.mem(self.sim.env.now, mem.gpu, mem.used_bytes, mem.kind_bytes(PREWARM), mem.kind_bytes(KV))

    def instance_added(self, inst: Instance) -> None:
        self._inst_views[inst.id] = inst.view()
        self._inst_tuple = None

    def instance_removed(self, inst: Instance) -> None:
        del self._inst_views[inst.id]
        self._inst_tuple = None

    def replicas_changed(self) -> None:
        self._rep_tuple = None
        self.replica_changes += 1

    #: Changes of the replica set (or a replica's state) so far (a placer's input, sim.weights).
    replica_changes: int = 0

    # ---- the views --------------------------------------------------------------------------------
    def gpu_tuple(self) -> tuple[GPUView, ...]:
        if self._gpu_tuple is None:
            views, gpus = self._gpu_views, self.sim.cluster.gpus
            for idx in self._gpu_dirty:
                g = gpus[idx]
                views[idx] = GPUView(idx, g.node, g.mem.capacity_bytes, g.mem.used_bytes, g.mem.kind_bytes(PREWARM),
                                     tuple(sorted(g.instances)), tuple(sorted(g.replicas)), g.failed)
            self._gpu_dirty.clear()
            self._gpu_tuple = tuple(views)
        return self._gpu_tuple

    def instance_tuple(self) -> tuple[InstanceView, ...]:
        if self.inst_dirty:
            views, instances = self._inst_views, self.sim.instances
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
        if self._rep_tuple is None:
            self._rep_tuple = tuple(r.view() for r in self.sim.replicas.values())
        return self._rep_tuple

    def host_cache_sets(self) -> dict[int, frozenset[str]]:
        m = self._host_cache_map
        if m is None or any(n.host_cache.changed for n in self._cache_nodes):
            m = self._host_cache_map = {}
            for n in self.sim.cluster.nodes:
                n.host_cache.changed = False
                m[n.idx] = self._all_models if n.host_cache.everything else frozenset(n.host_cache.entries)
        return dict(m)

    def node_pending(self) -> dict[int, int]:
        """Bytes still to move by flows crossing each node's host-memory, SSD or NIC link (one pass
        over the flows; the same sums, in the same order, as ``net.bytes_pending`` per node)."""
        net = self.sim.cluster.net
        net._advance()
        acc = {n.idx: 0 for n in self.sim.cluster.nodes}
        link_node = self._link_node
        for f in net.flows:
            for n in {link_node[link] for link in f.links if link in link_node}:
                acc[n] += f.remaining
        return {n: int(v) for n, v in acc.items()}

    def snapshot(self) -> Snapshot:
        """A read-only picture of the cluster for a policy."""
        sim = self.sim
        now = sim.env.now
        pending = {}
        if sim.bundle.meta.get("needs_node_pending", False):
            pending = self.node_pending()
        return Snapshot(
            time_s=now, gpus_per_node=sim.cluster.spec.gpus_per_node, gpus=self.gpu_tuple(),
            models=dict(self._model_views),
            instances=self.instance_tuple(),
            replicas=self.replica_tuple(),
            load=sim.load.views(now),
            host_cache=self.host_cache_sets(),
            node_pending_load_bytes=pending,
            link_bandwidth=dict(self._link_bw),
            asleep=sim.asleep_views())
