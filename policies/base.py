"""The policy Protocols (Router, Autoscaler, Activator, placers, Predictor, KV policy, sharing model).

The contract lives in the simulator (:mod:`warmsim.sim.policy_protocols`); policies implement it. This module re-exports
it so that policy code, the docs and user policies may keep importing it from here.
"""

from warmsim.sim.policy_protocols import (  # noqa: F401
    Activator,
    Autoscaler,
    DemandAwarePlacer,
    InitialPlacer,
    KVPolicy,
    KVStep,
    Predictor,
    PrewarmPlacer,
    Router,
    SharingModel,
)

__all__ = [
    "Predictor",
    "Router",
    "Autoscaler",
    "Activator",
    "PrewarmPlacer",
    "DemandAwarePlacer",
    "InitialPlacer",
    "KVStep",
    "KVPolicy",
    "SharingModel",
]
