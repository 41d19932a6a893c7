"""Prewarmed replicas: a model's weights loaded in the background onto GPUs, ready to be adopted."""

from __future__ import annotations

import simpy


class Replica:
    """Weights of ``model`` on ``gpus`` held as a universal worker's backup copy."""

    __slots__ = ("id", "model", "gpus", "ready", "flows", "evicted", "created")

    def __init__(self, env: simpy.Environment, ident: int, model, gpus: tuple[int, ...]):
        self.id = ident
        self.model = model
        self.gpus = gpus
        self.ready = env.event()
        self.flows: list = []
        self.evicted = False
        self.created = env.now
