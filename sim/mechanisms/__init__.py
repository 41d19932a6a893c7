"""Serving mechanisms beyond the start path and the memory switch: engines that sleep instead of
stopping (``sleep``), a cold model split as a pipeline across servers (``pipeline``), and KV memory
that grows and shrinks per engine on a shared GPU (``kv_balloon``).

One class per name in :data:`MECHANISMS`. A system switches one on in its config with
``mechanisms: {<name>: {<knob>: value}}``; the knobs are the fields of the class's ``Knobs`` dataclass,
checked when the system is built (:func:`check_knobs`). The simulation builds one object per run,
``cls(sim, knobs)``, and calls the hooks of :class:`Mechanism` at fixed points: an activation plan
the mechanism owns is its to apply, a new instance passes through ``on_created`` before its memory
is committed, a stopping engine through ``on_stopped``, ``start`` runs when the run begins and
``lines`` says what it did for the report. A new mechanism is one module here (subclassing
:class:`~warmsim.sim.mechanisms.base.Mechanism`, imported from ``sim/mechanisms/base.py`` so that this
table may import the module without a circle) plus one entry in :data:`MECHANISMS`
(``docs/extending.md``); its costs come from the cost model
(:class:`warmsim.sim.cost.CostModel`), never from constants in its module.
"""

from __future__ import annotations

from dataclasses import fields

from warmsim.sim.errors import UserError
from warmsim.sim.mechanisms.balloon import Balloon
from warmsim.sim.mechanisms.base import Mechanism
from warmsim.sim.mechanisms.pipeline import Pipeline
from warmsim.sim.mechanisms.sleep import Sleep

__all__ = ["MECHANISMS", "Mechanism", "build_mechanisms", "check_knobs"]


#: Every serving mechanism by name.
MECHANISMS: dict[str, type[Mechanism]] = {m.name: m for m in (Sleep, Pipeline, Balloon)}


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
