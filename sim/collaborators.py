"""What the run's components (:mod:`warmsim.sim.activation`, :mod:`warmsim.sim.weights`,
:mod:`warmsim.sim.requests`, :mod:`warmsim.sim.kv_lending`) ask of each other: one small Protocol per
service, so that each component is handed only the collaborators it uses and none imports another.
The simulation (:class:`warmsim.sim.simulation.Simulation`) wires the concrete objects together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from warmsim.sim.instance import Instance
    from warmsim.sim.types import Snapshot


class Snapshots(Protocol):
    """Builds the picture of the cluster a policy is handed (:class:`warmsim.sim.views.SnapshotViews`)."""

    def snapshot(self) -> Snapshot: ...


class Starter(Protocol):
    """Starts an instance on request (:class:`warmsim.sim.activation.Activations`)."""

    def try_start(self, model: str) -> bool: ...


class HeldRouter(Protocol):
    """Routes the requests held for a model, as far as its instances take them (:class:`warmsim.sim.requests.Requests`)."""

    def route_held(self, model: str) -> None: ...


class Evictor(Protocol):
    """Drops a prewarmed replica (:class:`warmsim.sim.weights.Weights`)."""

    def evict(self, rid: int, why: str = "") -> int: ...


class ReplicaKeeper(Evictor, Protocol):
    """Besides evictions: turns a stopped instance's kept weights into its successor replica."""

    def keep_on_stop(self, inst: Instance) -> None: ...
