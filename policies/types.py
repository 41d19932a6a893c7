"""The snapshot, view and plan types of the policy contract.

The contract lives in the simulator (:mod:`warmsim.sim.types`); policies implement it. This module re-exports
it so that policy code, the docs and user policies may keep importing it from here.
"""

from warmsim.sim.types import (  # noqa: F401
    ACTIVE,
    DRAINING,
    INITIALISING,
    LIVE_STATES,
    LOADING,
    STARTING,
    STOPPED,
    Activate,
    Evict,
    GPUView,
    InstanceView,
    LoadView,
    ModelView,
    Prewarm,
    ReplicaView,
    ScaleDecision,
    SleeperView,
    Snapshot,
)

__all__ = [
    "STARTING",
    "LOADING",
    "INITIALISING",
    "ACTIVE",
    "DRAINING",
    "STOPPED",
    "LIVE_STATES",
    "ModelView",
    "GPUView",
    "InstanceView",
    "ReplicaView",
    "SleeperView",
    "LoadView",
    "Snapshot",
    "Activate",
    "Prewarm",
    "Evict",
    "ScaleDecision",
]
