"""What an :class:`~warmsim.sim.engine.Engine` and an :class:`~warmsim.sim.instance.Instance` may ask of the run
that hosts them: two small typed Protocols instead of the whole simulation.

The simulation (:class:`warmsim.sim.simulation.Simulation`) implements both; a test may hand an engine or an
instance any object that does.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import simpy

    from warmsim.sim.cluster import Cluster
    from warmsim.sim.cost import CostModel
    from warmsim.sim.engine import EngineSpec
    from warmsim.sim.instance import Instance
    from warmsim.sim.memswitch import MemorySwitch
    from warmsim.sim.models import ServedModel
    from warmsim.sim.recorder import Recorder
    from warmsim.sim.startup import StartPath


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
    def instance_changed(self, inst: Instance) -> None: ...
    def reclaim_kv(self, inst: Instance, blocks: int) -> None: ...
    # Asked only by engines with the matching feature (sim.engine_features.FeatureEngine):
    #: rows of per-step metrics (``EngineSpec.record_steps``)
    step_rows: list

    def on_prefix_hit(self, rid: int, tokens: int) -> None: ...  # EngineSpec.prefix_caching


class InstanceHost(EngineHost, Protocol):
    """Besides an engine's needs: costs, mechanisms, memory, weight loads and lifecycle callbacks."""

    engine_spec: EngineSpec
    cost: CostModel
    recorder: Recorder
    cluster: Cluster
    memswitch: MemorySwitch
    start_path: StartPath  # the stages of a start the system has paid beforehand (sim/startup.py)

    def record_instance(self, inst: Instance) -> None: ...
    def state_changed(self, inst: Instance, old: str, new: str) -> None: ...
    def step_slowdown(self, inst: Instance, phase: str, batch: int, tokens: int | None = None) -> float: ...
    def load_weights(self, model: ServedModel, gpus: tuple[int, ...], source: str, tag, background: bool = False,
                     replica=None, peer: Instance | None = None) -> Generator: ...
    def adopt_replica(self, inst: Instance) -> None: ...
    def on_instance_active(self, inst: Instance) -> None: ...
    def on_instance_draining(self, inst: Instance) -> None: ...
    def on_instance_stopped(self, inst: Instance) -> None: ...
