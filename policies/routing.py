"""Request routing: which live instance of a model takes a new request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warmsim.policies.types import ACTIVE, LIVE_STATES, InstanceView
from warmsim.sim.knobs import bounded, count, flag


@dataclass(frozen=True)
@bounded(max_inflight=count("requests in flight an instance takes before the router holds the rest; null = no cap",
                             null=True),
         prefer_active=flag("break ties towards instances already serving"))
class LeastLoadedRouter:
    """Send a request to the model's live instance with the fewest requests in flight.

    With ``max_inflight`` set (WarmServe: 32), an instance at that many is full; when every
    instance is full the request is held at the router (``None``) and retried, which is also the
    autoscaler's signal. With ``None`` the least-loaded instance always takes it (its engine queues).
    ``prefer_active`` breaks ties in favour of instances already serving over ones still starting.
    """

    max_inflight: int | None = None
    prefer_active: bool = True

    def route(self, model: str, instances: Sequence[InstanceView]) -> int | None:
        best: InstanceView | None = None
        best_key = None
        for inst in instances:
            if inst.state not in LIVE_STATES:
                continue
            if self.max_inflight is not None and inst.inflight >= self.max_inflight:
                continue
            key = (inst.inflight, 0 if (inst.state == ACTIVE or not self.prefer_active) else 1, inst.id)
            if best_key is None or key < best_key:
                best, best_key = inst, key
        return None if best is None else best.id
