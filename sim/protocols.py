"""What an :class:`~warmsim.sim.engine.Engine` may ask of the run that hosts it: a small typed Protocol
instead of the whole simulation (what an instance asks is :class:`warmsim.sim.instance.InstanceHost`).

The simulation (:class:`warmsim.sim.simulation.Simulation`) implements it; a test may hand an engine
any object that does. The engine passes its instance back as an opaque value (``inst``), so this
module imports nothing of the simulator and stays a leaf of the import graph.
"""

from __future__ import annotations

from typing import Any, Protocol

import simpy


class EngineHost(Protocol):
    """The clock, the requests' sizes and the callbacks an engine reports to."""

    env: simpy.Environment
    workload: Any  # arrays ``prompt_tokens``, ``output_tokens``, ``arrival_s`` by request id
    #: Ids of instances whose engine changed since the KV-lending loop last looked (engines add).
    kv_dirty: set[int]

    def on_first_token(self, rid: int, t: float) -> None: ...
    def on_complete(self, rid: int, t: float) -> None: ...
    def on_drop(self, rid: int, reason: str) -> None: ...
    def on_preempt(self, rid: int) -> None: ...
    def instance_changed(self, inst: Any) -> None: ...
    def reclaim_kv(self, inst: Any, blocks: int) -> None: ...
    # Asked only by engines with the matching feature (sim.engine_features.FeatureEngine):
    #: rows of per-step metrics (``EngineSpec.record_steps``)
    step_rows: list

    def on_prefix_hit(self, rid: int, tokens: int) -> None: ...  # EngineSpec.prefix_caching
