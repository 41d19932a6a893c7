"""The run's shared state: its instances, replicas and ids, and who hears of each change.

:class:`SimState` is the one place that adds or removes an instance or a replica, puts one on a GPU
or takes it off, or marks an instance changed. Each such method announces the change to the
listeners that keep derived state: the snapshot views (:mod:`warmsim.sim.views`), the load tracker
(:mod:`warmsim.sim.load`) and KV lending (:mod:`warmsim.sim.kv_lending`), so no component has to
remember to tell the others. The listeners are typed by the small Protocols below; a test may hand
any objects that have their methods.

It also holds ``asleep_views``, the hook through which a serving mechanism that keeps engines
asleep on GPUs (``sim/mechanisms/sleep.py``) shows them to policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from warmsim.sim.cluster import GPU
    from warmsim.sim.instance import Instance
    from warmsim.sim.replica import Replica
    from warmsim.sim.types import SleeperView


class ViewListener(Protocol):
    """What the snapshot views hear of (:class:`warmsim.sim.views.SnapshotViews`)."""

    #: Ids of instances whose view (state, in-flight count, idle time) may have changed.
    inst_dirty: set[int]

    def gpu_changed(self, g: int) -> None: ...
    def instance_added(self, inst: Instance) -> None: ...
    def instance_removed(self, inst: Instance) -> None: ...
    def replicas_changed(self) -> None: ...


class LoadListener(Protocol):
    """What the load tracker hears of (:class:`warmsim.sim.load.LoadTracker`)."""

    def instance_added(self, model: str) -> None: ...
    def state_changed(self, model: str, old: str, new: str) -> None: ...
    def gpu_busy_delta(self, delta: int) -> None: ...


class KVListener(Protocol):
    """What KV lending hears of (:class:`warmsim.sim.kv_lending.KVLending`)."""

    #: Ids of instances whose engine changed since the lending loop last looked.
    dirty: set[int]


def _no_sleepers() -> tuple[SleeperView, ...]:
    return ()


class SimState:
    """Instances, replicas and ids of one run, with the announcements of their changes.

    ``models``: the served model names (the keys of :attr:`by_model`). :meth:`listen` binds the GPUs
    and the listeners once they exist; every mutating method needs them.
    """

    def __init__(self, models: Sequence[str]):
        self.instances: dict[int, Instance] = {}  # live instances by id, in creation order
        self.replicas: dict[int, Replica] = {}  # prewarmed replicas by id
        self.by_model: dict[str, dict[int, Instance]] = {m: {} for m in models}  # routing: instances per model
        #: Changes of the replica set (or a replica's state) so far (a placer's input, sim.weights).
        self.replica_changes = 0
        #: Suspended engines as policies see them (the ``sleep`` mechanism replaces this hook).
        self.asleep_views = _no_sleepers
        self._next_id = 0

    def listen(self, gpus: Sequence[GPU], views: ViewListener, load: LoadListener, kv: KVListener) -> None:
        """Bind the cluster's GPUs and the three listeners."""
        self.gpus = gpus
        self.views = views
        self.load = load
        self._inst_dirty = views.inst_dirty
        self._kv_dirty = kv.dirty

    def new_id(self) -> int:
        """A fresh id (instances, replicas and sleepers share one sequence)."""
        self._next_id += 1
        return self._next_id

    # ---- instances ------------------------------------------------------------------------------
    def instance_changed(self, inst: Instance) -> None:
        """``inst``'s view (state, in-flight count, idle time) or its engine's blocks may have changed."""
        self._inst_dirty.add(inst.id)
        self._kv_dirty.add(inst.id)

    def state_changed(self, inst: Instance, old: str, new: str) -> None:
        """``inst`` moved from lifecycle state ``old`` to ``new``."""
        self.load.state_changed(inst.model.name, old, new)
        self.instance_changed(inst)

    def add_instance(self, inst: Instance) -> None:
        """``inst`` takes its GPUs (its memory is already committed) and becomes live."""
        gpus, views = self.gpus, self.views
        self.load.gpu_busy_delta(sum(1 for g in inst.gpus if not gpus[g].instances))
        for g in inst.gpus:
            gpus[g].instances.add(inst.id)
            views.gpu_changed(g)
        self.instances[inst.id] = inst
        views.instance_added(inst)
        self.load.instance_added(inst.model.name)
        self.by_model[inst.model.name][inst.id] = inst

    def remove_instance(self, inst: Instance) -> None:
        """``inst`` (stopped) leaves its GPUs and the run."""
        gpus, views = self.gpus, self.views
        for g in inst.gpus:
            gpus[g].instances.discard(inst.id)
            views.gpu_changed(g)
        self.load.gpu_busy_delta(-sum(1 for g in inst.gpus if not gpus[g].instances))
        del self.instances[inst.id]
        views.instance_removed(inst)
        del self.by_model[inst.model.name][inst.id]

    def release_gpus(self, inst: Instance, dropped: Sequence[int]) -> None:
        """``inst`` keeps running but gives up GPUs ``dropped`` (a pipeline collapsing to one stage;
        its memory there is already released)."""
        gpus = self.gpus
        for g in dropped:
            gpus[g].instances.discard(inst.id)
            self.views.gpu_changed(g)
        self.load.gpu_busy_delta(-sum(1 for g in dropped if not gpus[g].instances))

    def gpu_changed(self, g: int) -> None:
        """GPU ``g`` changed in a way its view shows (it failed)."""
        self.views.gpu_changed(g)

    # ---- replicas -------------------------------------------------------------------------------
    def add_replica(self, rep: Replica) -> None:
        """``rep`` is placed on its GPUs (its memory, if any yet, is already set)."""
        for g in rep.gpus:
            self.gpus[g].replicas.add(rep.id)
            self.views.gpu_changed(g)
        self.replicas[rep.id] = rep
        self._replicas_changed()

    def remove_replica(self, rep: Replica) -> None:
        """``rep`` leaves the run (evicted or taken over; its memory is already released or handed over)."""
        self.replicas.pop(rep.id, None)
        self._replicas_changed()
        for g in rep.gpus:
            self.gpus[g].replicas.discard(rep.id)
            self.views.gpu_changed(g)

    def replica_ready(self, rep: Replica) -> None:
        """``rep``'s weights are all in place."""
        rep.ready.succeed()
        self._replicas_changed()

    def _replicas_changed(self) -> None:
        self.replica_changes += 1
        self.views.replicas_changed()
