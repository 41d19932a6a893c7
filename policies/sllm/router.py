"""ServerlessLLM's request routing: only ready instances, each with a bounded queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warmsim.policies.types import ACTIVE, InstanceView
from warmsim.sim.knobs import bounded, count


@dataclass(frozen=True)
@bounded(max_queue_length=count("requests per ready instance; null = no cap", null=True))
class SllmRouter:
    """Send a request to a *ready* (active) instance of the model with room, fewest in flight first.

    ServerlessLLM's per-model router hands a request only to an instance that has finished starting,
    and an instance refuses a request once ``max_queue_length`` are in flight; otherwise the request
    waits at the router and is retried (every second there). This differs from
    :class:`warmsim.policies.routing.LeastLoadedRouter` in that a starting instance never takes a request, so
    a request is never stuck behind one cold start while another instance becomes ready first.

    ServerlessLLM picks among ready instances round-robin; least-loaded (ties: lowest id) is used
    instead because it needs no state and, with every instance capped, spreads load the same way in
    steady state.
    """

    #: Requests in flight one instance accepts. Default 10: ServerlessLLM's router creates every
    #: instance handle with ``max_queue_length=10``. ``None``: no cap (the engine queues).
    max_queue_length: int | None = 10

    def route(self, model: str, instances: Sequence[InstanceView]) -> int | None:
        """Id of the ready instance to take the request, or ``None`` to hold it at the router."""
        best: tuple[int, int] | None = None
        for inst in instances:
            if inst.state != ACTIVE:
                continue
            if self.max_queue_length is not None and inst.inflight >= self.max_queue_length:
                continue
            key = (inst.inflight, inst.id)
            if best is None or key < best:
                best = key
        return None if best is None else best[1]
