"""Typed bounds of a knob, one schema for config keys and policy constructor arguments.

A :class:`Knob` says what one value may be (type, bounds, null, choices) and what it means; its
:meth:`Knob.check` raises a one-line :class:`warmsim.sim.errors.UserError` naming the key, the value
and what is allowed. ``experiments/validate.py`` holds the config groups' knobs; a policy class
declares its constructor's with :func:`bounded`, and every object of it is checked when it is made
(before the class's own ``__post_init__``), whether a config or Python code builds it::

    @dataclass(frozen=True)
    @bounded(max_inflight=Knob("int", 1, 1e6, null=True, help="requests one instance takes"))
    class MyRouter: ...

:func:`check_args` checks a config node's arguments against a class's knobs before it is built
(the builder does, so that the message names the config key).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warmsim.sim.errors import UserError

#: Upper bound of every token count (prompt and output lengths, caps): far beyond any model's
#: context, far below the 32-bit columns of the request table.
MAX_TOKENS = 10_000_000
#: Longest workload / period, in seconds (one year).
MAX_SECONDS = 366 * 86400.0
#: Shortest period of a policy's control loop or of the router's re-check, in seconds: a shorter one
#: schedules millions of events per simulated minute (a run that seems to hang).
MIN_PERIOD_S = 1e-3


class KnobError(UserError, ValueError):
    """A value outside its knob's bounds: bad input (a :class:`UserError`, exit status 2), and a
    ``ValueError`` for Python code that builds a policy with a bad argument."""


@dataclass(frozen=True)
class Knob:
    """One config value: its type, bounds and meaning.

    ``kind``: ``int``, ``float``, ``bool``, ``str``, ``choice`` (one of ``choices``), ``floats`` (a
    list of numbers within the bounds), ``pairs`` (a table of ``[number, number]`` rows, each number at
    least ``lo``), ``strs`` (a non-empty list of strings) or ``mapping`` (its entries checked by the
    group's own code)."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    null: bool = False
    choices: tuple = ()
    help: str = ""

    def allowed(self) -> str:
        """What the knob accepts, in words."""
        if self.kind in ("int", "float", "floats"):
            what = {"int": "an integer", "float": "a number", "floats": "a list of numbers"}[self.kind]
            lo = "" if self.lo is None else fmt(self.lo)
            hi = "" if self.hi is None else fmt(self.hi)
            if lo and hi:
                what += f" in {'(' if self.lo_open else '['}{lo}, {hi}]"
            elif lo:
                what += f" {'>' if self.lo_open else '>='} {lo}"
            elif hi:
                what += f" <= {hi}"
        elif self.kind == "bool":
            what = "true or false"
        elif self.kind == "choice":
            what = "one of " + ", ".join(dict.fromkeys(str(c).lower() if isinstance(c, bool) else str(c)
                                                     for c in self.choices))
        elif self.kind == "strs":
            what = "a non-empty list of names"
        elif self.kind == "mapping":
            what = "a mapping"
        elif self.kind == "pairs":
            what = "a non-empty list of [number, number] pairs" + ("" if self.lo is None else f", each >= {fmt(self.lo)}")
        else:
            what = "a non-empty string"
        return ("null or " if self.null else "") + what

    def _fail(self, key: str, v: Any, label: str = "config key ") -> KnobError:
        shown = "null" if v is None else (str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, str) else v)
        hint = f" ({self.help})" if self.help else ""
        return KnobError(f"{label}{key}: got {shown}; allowed: {self.allowed()}{hint}")

    def _number(self, key: str, v: Any, whole: bool) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self._fail(key, v)
        if isinstance(v, float) and not math.isfinite(v):
            raise self._fail(key, v)
        if whole and not (isinstance(v, int) or float(v).is_integer()):
            raise self._fail(key, v)
        if self.lo is not None and (v < self.lo or (self.lo_open and v <= self.lo)):
            raise self._fail(key, v)
        if self.hi is not None and v > self.hi:
            raise self._fail(key, v)

    def check(self, key: str, v: Any, label: str = "config key ") -> None:
        """Raise a one-line :class:`KnobError` (``<label><key>: got ...; allowed: ...``) unless ``v`` is
        allowed."""
        try:
            self._check(key, v)
        except KnobError as e:
            if label == "config key ":
                raise
            raise KnobError(label + str(e)[len("config key "):]) from None

    def _check(self, key: str, v: Any) -> None:
        if v is None:
            if self.null:
                return
            raise self._fail(key, v)
        if self.kind in ("int", "float"):
            self._number(key, v, self.kind == "int")
        elif self.kind == "floats":
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v:
                raise self._fail(key, v)
            for i, x in enumerate(v):
                try:
                    self._number(f"{key}[{i}]", x, False)
                except UserError:
                    raise self._fail(f"{key}[{i}]", x) from None
        elif self.kind == "bool":
            if not isinstance(v, bool):
                raise self._fail(key, v)
        elif self.kind == "choice":
            if not any(v == c and type(v) is type(c) for c in self.choices):
                raise self._fail(key, v)
        elif self.kind == "strs":
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, Sequence) or not v or not all(isinstance(x, str) and x for x in v):
                raise self._fail(key, v)
        elif self.kind == "mapping":
            if not isinstance(v, Mapping):
                raise self._fail(key, v)
        elif self.kind == "pairs":
            ok = isinstance(v, Sequence) and not isinstance(v, (str, bytes)) and len(v) > 0
            for row in v if ok else ():
                ok = ok and isinstance(row, Sequence) and not isinstance(row, (str, bytes)) and len(row) == 2 and all(
                    not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)
                    and (self.lo is None or x >= self.lo) for x in row)
            if not ok:
                raise self._fail(key, v)
        elif not isinstance(v, str) or not v:
            raise self._fail(key, v)


def fmt(x: float) -> str:
    """A bound in words: whole numbers without a decimal point."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e13 else f"{x:g}"


def period(help_: str) -> Knob:
    """A control-loop period in seconds: from :data:`MIN_PERIOD_S` to a day."""
    return Knob("float", MIN_PERIOD_S, 86400.0, help=help_)


def count(help_: str, hi: float = 1e6, lo: float = 1, null: bool = False) -> Knob:
    """A whole number from ``lo`` (default 1) to ``hi``."""
    return Knob("int", lo, hi, null=null, help=help_)


def positive(help_: str, hi: float, null: bool = False) -> Knob:
    """A number in (0, ``hi``]."""
    return Knob("float", 0, hi, lo_open=True, null=null, help=help_)


def nonneg(help_: str, hi: float, null: bool = False) -> Knob:
    """A number in [0, ``hi``]."""
    return Knob("float", 0, hi, null=null, help=help_)


def flag(help_: str) -> Knob:
    """true or false."""
    return Knob("bool", help=help_)


def choice(help_: str, *choices) -> Knob:
    """One of ``choices``."""
    return Knob("choice", choices=tuple(choices), help=help_)


def text(help_: str, null: bool = False) -> Knob:
    """A non-empty string (its meaning checked by the class, e.g. a weight source's name)."""
    return Knob("str", null=null, help=help_)


def knobs_of(cls) -> dict[str, Knob]:
    """The knobs a class declared with :func:`bounded` (its bases' too); ``{}`` for any other class."""
    return dict(getattr(cls, "KNOBS", None) or {})


def check_args(cls, args: Mapping[str, Any], where: str) -> None:
    """Check ``args`` (a config node's arguments of ``cls``) against ``cls``'s knobs: a UserError
    naming ``<where>.<argument>``. Arguments without a knob are left to the class."""
    for name, knob in knobs_of(cls).items():
        if name in args:
            knob.check(f"{where}.{name}", args[name])


def _check_self(obj) -> None:
    for name, knob in knobs_of(type(obj)).items():
        if not hasattr(obj, name):
            continue
        v = getattr(obj, name)
        knob.check(f"{type(obj).__name__}.{name}", v, label="")
        if knob.kind == "int" and isinstance(v, float):  # 32.0 from a config: the whole number it means
            object.__setattr__(obj, name, int(v))


def bounded(**knobs: Knob):
    """Class decorator (under ``@dataclass``, so that the dataclass's ``__init__`` calls the check):
    each named constructor argument is checked against its :class:`Knob` when an object is made,
    before the class's own ``__post_init__``. For a class with its own ``__init__``, call
    :func:`check_knobs` at its start instead. The knobs are the class's ``KNOBS``."""
    def wrap(cls):
        cls.KNOBS = {**knobs_of(cls), **knobs}
        own = cls.__dict__.get("__post_init__")

        def __post_init__(self, *args):
            _check_self(self)
            if own is not None:
                own(self, *args)
            else:
                parent = getattr(super(cls, self), "__post_init__", None)
                if parent is not None:
                    parent(*args)

        __post_init__.__doc__ = "Check the constructor's arguments against the class's knobs (``KNOBS``)."
        cls.__post_init__ = __post_init__
        return cls
    return wrap


def check_init(cls, **values) -> None:
    """For a class with its own ``__init__``: check its arguments ``values`` against the class's
    knobs (a UserError naming ``Class.argument``) before anything is stored."""
    for name, knob in knobs_of(cls).items():
        if name in values:
            knob.check(f"{cls.__name__}.{name}", values[name], label="")


def check_knobs(obj) -> None:
    """Check ``obj``'s attributes against its class's knobs (for a class with its own ``__init__``;
    call it after setting them)."""
    _check_self(obj)
