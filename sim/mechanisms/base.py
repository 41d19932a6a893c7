"""The hooks a serving mechanism (:mod:`warmsim.sim.mechanisms`) may implement, called by the simulation at
fixed points of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warmsim.sim.instance import Instance
    from warmsim.sim.types import Activate


class Mechanism:
    """A serving mechanism of one run. Every hook is optional: the defaults do nothing."""

    #: The name a system config uses (``mechanisms.<name>``).
    name = ""
    #: The frozen dataclass of the mechanism's knobs (checked at build time).
    Knobs: Any = None

    def __init__(self, sim, knobs) -> None:
        self.sim = sim
        self.knobs = knobs

    def owns(self, act: Activate) -> bool:
        """Whether this activation plan is the mechanism's to verify and apply."""
        return False

    def apply(self, act: Activate, ready_at_start: bool) -> Instance:
        """Verify and apply a plan :meth:`owns` claimed; returns the new instance."""
        raise NotImplementedError

    def prepare(self, act: Activate, model) -> None:
        """An activation plan the simulator applies itself, before its KV cache is sized (``model``: the
        served model at the plan's TP)."""

    def on_created(self, inst: Instance) -> None:
        """A new instance, before its memory is committed."""

    def on_stopped(self, inst: Instance) -> bool:
        """An instance's engine stopped; True when the mechanism takes the stop over."""
        return False

    def start(self) -> None:
        """The run begins (start processes here)."""

    def lines(self) -> list[str]:
        """What the mechanism did in the run, for the report (each line names it)."""
        return []
