"""Transfers that share links max-min fairly (a fluid flow model).

Every weight load is a flow of bytes across a path of links (e.g. a node's SSD, then one GPU's PCIe
link). Concurrent flows share each link's capacity by progressive filling: all unfrozen flows grow
at the same rate until some link saturates; flows through it freeze; repeat. Rates are recomputed
only when a flow starts or ends, so a load costs two events, not one per chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

#: Bytes below which a flow counts as finished (absorbs float rounding).
_EPS_BYTES = 1e-3


@dataclass(eq=False)
class Link:
    """A shared resource with a capacity in bytes/s (a PCIe link, a node's SSD, ...)."""

    name: str
    capacity: float
    flows: set = field(default_factory=set)


@dataclass(eq=False)
class Flow:
    """``remaining`` bytes moving across ``links``; ``done`` fires when they have all arrived."""

    links: tuple[Link, ...]
    remaining: float
    done: simpy.Event
    tag: object = None
    rate: float = 0.0
    cap: float = float("inf")  # an extra per-flow ceiling, bytes/s


class FlowNetwork:
    """Owns the links and the flows crossing them, and schedules flow completions."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.flows: list[Flow] = []
        self._last = env.now
        self._generation = 0

    def transfer(self, nbytes: float, links: tuple[Link, ...], tag: object = None,
                 cap: float = float("inf")) -> Flow:
        """Start moving ``nbytes`` over ``links``; wait on ``flow.done``."""
        flow = Flow(tuple(links), float(nbytes), self.env.event(), tag, cap=cap)
        if flow.remaining <= _EPS_BYTES or not flow.links:
            flow.done.succeed(flow)
            return flow
        self._advance()
        self.flows.append(flow)
        for link in flow.links:
            link.flows.add(flow)
        self._reschedule()
        return flow

    def cancel(self, flow: Flow) -> None:
        """Stop ``flow`` (e.g. its prewarmed replica was evicted); ``done`` never fires."""
        if flow not in self.flows:
            return
        self._advance()
        self._remove(flow)
        self._reschedule()

    def set_capacity(self, capacities: dict) -> None:
        """Give links new capacities (a degraded or restored link); flows in flight re-share at once."""
        self._advance()
        for link, cap in capacities.items():
            link.capacity = float(cap)
        self._reschedule()

    def bytes_pending(self, links: set[Link]) -> float:
        """Bytes still to move by flows crossing any of ``links``."""
        self._advance()
        return sum(f.remaining for f in self.flows if any(link in links for link in f.links))

    # ---- internals ------------------------------------------------------------------------------
    def _remove(self, flow: Flow) -> None:
        self.flows.remove(flow)
        for link in flow.links:
            link.flows.discard(flow)

    def _advance(self) -> None:
        dt = self.env.now - self._last
        if dt > 0:
            for f in self.flows:
                f.remaining -= f.rate * dt
        self._last = self.env.now

    def _allocate(self) -> None:
        """Max-min fair rates by progressive filling."""
        unfrozen = set(self.flows)
        residual = {}
        for f in self.flows:
            f.rate = 0.0
            for link in f.links:
                residual[id(link)] = link.capacity
        while unfrozen:
            # The increment every unfrozen flow can still get before a link (or its own cap) binds.
            inc = min(f.cap - f.rate for f in unfrozen)
            bottleneck = None
            # Unfrozen flows per link, counted once per pass (the same counts as scanning each
            # link's flows for every flow on it, without the quadratic cost).
            n_unfrozen: dict[int, int] = {}
            for f in unfrozen:
                for key in {id(link) for link in f.links}:
                    n_unfrozen[key] = n_unfrozen.get(key, 0) + 1
            for f in unfrozen:
                for link in f.links:
                    share = residual[id(link)] / n_unfrozen[id(link)]
                    if share < inc:
                        inc, bottleneck = share, link
            for f in unfrozen:
                f.rate += inc
                for link in f.links:
                    residual[id(link)] -= inc
            if bottleneck is None:
                frozen = {f for f in unfrozen if f.cap - f.rate <= 1e-9}
            else:
                frozen = {f for f in unfrozen if any(residual[id(link)] <= 1e-9 * link.capacity for link in f.links)}
            frozen |= {f for f in unfrozen if f.cap - f.rate <= 1e-9}
            unfrozen -= frozen or unfrozen

    def _reschedule(self) -> None:
        self._allocate()
        self._generation += 1
        if not self.flows:
            return
        soonest = min(f.remaining / f.rate for f in self.flows if f.rate > 0)
        gen = self._generation
        self.env.timeout(max(soonest, 0.0)).callbacks.append(lambda _ev: self._on_timer(gen))

    def _on_timer(self, gen: int) -> None:
        if gen != self._generation:
            return  # a start or end since then rescheduled
        self._advance()
        # A flow whose remaining time is below the clock's resolution at ``now`` is done: its timer
        # could not move the clock (``now + dt == now`` once ``now`` passes ~8,000 s and dt < 1e-12 s),
        # so waiting for it would fire the same timer forever. Below 8,192 s this is the fixed 1e-12 s.
        tick = max(1e-12, math.ulp(self.env.now))
        finished = [f for f in self.flows if f.remaining <= _EPS_BYTES or (f.rate > 0 and f.remaining / f.rate < tick)]
        for f in finished:
            self._remove(f)
        self._reschedule()
        for f in finished:
            f.done.succeed(f)
