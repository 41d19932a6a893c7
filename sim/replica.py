"""Prewarmed replicas: a model's weights loaded in the background onto GPUs, ready to be adopted."""

from __future__ import annotations

import simpy

from warmsim.sim.types import ReplicaView


class Replica:
    """Weights of ``model`` on ``gpus`` held as a universal worker's backup copy."""

    __slots__ = ("id", "model", "gpus", "ready", "flows", "evicted", "created", "copy_released", "adopter", "_view")

    def __init__(self, env: simpy.Environment, ident: int, model, gpus: tuple[int, ...]):
        self.id = ident
        self.model = model
        self.gpus = gpus
        self.ready = env.event()
        self.flows: list = []
        self.evicted = False
        self.copy_released = False  # evict() cancelled its load and released the GPUs' copy count
        self.created = env.now
        self.adopter: int | None = None  # the instance that will take these weights over (an activation hit)
        self._view: ReplicaView | None = None

    def view(self) -> ReplicaView:
        """This replica as policies see it (memoised until its weights become ready)."""
        ready = self.ready.triggered
        v = self._view
        if v is None or v.ready != ready:
            v = self._view = ReplicaView(self.id, self.model.name, self.gpus, ready, self.model.shard_bytes)
        return v
