"""Serving mechanisms beyond the start path and the memory switch: engines that sleep instead of
stopping (``sleep``), a cold model split as a pipeline across servers (``pipeline``), and KV memory
that grows and shrinks per engine on a shared GPU (``kv_balloon``).

One class per name in :data:`MECHANISMS`. A system switches one on in its config with
``mechanisms: {<name>: {<knob>: value}}``; the knobs are the fields of the class's ``Knobs`` dataclass,
checked when the system is built (:func:`check_knobs`). The simulation builds one object per run,
``cls(sim, knobs)``, and calls the hooks of :class:`Mechanism` at fixed points: an activation plan
the mechanism owns is its to apply, a new instance passes through ``on_created`` before its memory
is committed, a stopping engine through ``on_stopped``, ``start`` runs when the run begins and
``lines`` says what it did for the report. A new mechanism is one module here plus one entry in
:data:`MECHANISMS` (``docs/extending.md``); its costs come from the cost model
(:class:`warmsim.sim.cost.CostModel`), never from constants in its module.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from warmsim.sim.errors import UserError

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


def _table() -> dict[str, type[Mechanism]]:
    from warmsim.sim.mechanisms.balloon import Balloon
    from warmsim.sim.mechanisms.pipeline import Pipeline
    from warmsim.sim.mechanisms.sleep import Sleep
    return {m.name: m for m in (Sleep, Pipeline, Balloon)}


#: Every serving mechanism by name.
MECHANISMS: dict[str, type[Mechanism]] = _table()


def check_knobs(name: str, raw, system: str):
    """The checked knobs of mechanism ``name`` from a system config (``raw``: a mapping, or ``true``
    for the defaults); a :class:`UserError` naming the key otherwise."""
    cls = MECHANISMS[name]
    if raw is True or raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"system {system}: mechanisms.{name} must be a mapping of its knobs or true, got {raw!r}")
    known = {f.name for f in fields(cls.Knobs)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UserError(f"system {system}: mechanisms.{name}: unknown knob(s) {unknown} (known: {', '.join(sorted(known))})")
    try:
        return cls.Knobs(**raw)
    except UserError as e:
        raise UserError(f"system {system}: mechanisms.{name}: {e}") from None


def build_mechanisms(sim, extras: dict) -> list[Mechanism]:
    """One object per mechanism the bundle switches on, in table order."""
    return [cls(sim, extras[name]) for name, cls in MECHANISMS.items() if name in extras]
