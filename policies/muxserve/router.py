"""MuxServe's routing as WarmServe's artifact emulates it: least-loaded among the model's engines,
each engine admitting at most ``max_num_seqs`` requests; the rest wait at the router."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from warmsim.policies.types import LIVE_STATES, InstanceView
from warmsim.sim.knobs import Knob, bounded, count


@dataclass(frozen=True)
@bounded(max_num_seqs=count("requests in flight per engine"),
         per_model=Knob("mapping", help="per-model caps: model -> requests in flight"))
class MuxServeRouter:
    """Send a request to the model's engine with the fewest requests in flight below its cap.

    An engine with ``max_num_seqs`` requests in flight is full (its own cap when its placement set
    one, as MuxServe's placer does per model; else ``per_model`` or ``max_num_seqs``); when all of a model's engines are
    full the request waits at the router (``None``) and is retried. Engines exist from time 0
    (prewarmed), so every live engine is eligible. Ties: lowest instance id.
    """

    #: Requests in flight per engine. Default 256: the default ``max_num_seqs`` in MuxServe's
    #: placement files (and vLLM's own default); MuxServe's placer writes a per-model value from its
    #: throughput estimate, which ``per_model`` carries.
    max_num_seqs: int = 256
    #: Per-model overrides of ``max_num_seqs`` (model name -> cap).
    per_model: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, cap in self.per_model.items():
            count("requests in flight per engine of this model").check(f"MuxServeRouter.per_model.{name}", cap,
                                                                       label="")

    def cap(self, model: str) -> int:
        """The in-flight cap of each engine of ``model``."""
        return self.per_model.get(model, self.max_num_seqs)

    def route(self, model: str, instances: Sequence[InstanceView]) -> int | None:
        """Id of the engine to take the request, or ``None`` to hold it at the router."""
        default = self.cap(model)
        configured = model in self.per_model  # a configured cap wins over the engine's own
        best: tuple[int, int] | None = None
        for inst in instances:
            cap = default if configured or inst.max_num_seqs is None else inst.max_num_seqs
            if inst.state not in LIVE_STATES or inst.inflight >= cap:
                continue
            key = (inst.inflight, inst.id)
            if best is None or key < best:
                best = key
        return None if best is None else best[1]
