"""Reading a workload config node: defaults, unknown keys and typed values, with clear errors.

Messages name the config key as ``workload.<key>`` so a user can find it in the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from warmsim.sim.errors import UserError


class Knobs:
    """A workload config node merged over a builder's defaults.

    Args:
        cfg: the user's node (plain dict); ``kind`` is ignored here.
        defaults: every key the builder understands, with its default.
        prefix: how keys are named in messages.
    """

    def __init__(self, cfg: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = "workload") -> None:
        unknown = sorted(k for k in cfg if k != "kind" and k not in defaults)
        if unknown:
            raise UserError(f"{prefix}.{unknown[0]}: unknown key for kind {cfg.get('kind')!r}; known: {', '.join(defaults)}")
        self._values = {**defaults, **{k: v for k, v in cfg.items() if k != "kind"}}
        self._prefix = prefix

    def as_dict(self) -> dict[str, Any]:
        """All knobs after defaults (for ``Workload.meta``)."""
        return dict(self._values)

    def raw(self, key: str) -> Any:
        """The value as given."""
        return self._values[key]

    def number(self, key: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
               optional: bool = False) -> float | None:
        """A float in ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``); None allowed if ``optional``."""
        v = self._values[key]
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UserError(f"{self._prefix}.{key}: want a number, got {v!r}")
        v = float(v)
        if lo is not None and (v < lo or (lo_open and v <= lo)):
            raise UserError(f"{self._prefix}.{key}: must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise UserError(f"{self._prefix}.{key}: must be <= {hi:g}, got {v:g}")
        return v

    def integer(self, key: str, *, lo: int | None = None, optional: bool = False) -> int | None:
        """A whole number >= ``lo``."""
        v = self._values[key]
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int) and not (isinstance(v, float) and v.is_integer()):
            raise UserError(f"{self._prefix}.{key}: want a whole number, got {v!r}")
        v = int(v)
        if lo is not None and v < lo:
            raise UserError(f"{self._prefix}.{key}: must be >= {lo}, got {v}")
        return v

    def choice(self, key: str, options: Sequence[str]) -> str:
        """One of ``options``."""
        v = self._values[key]
        if v not in options:
            raise UserError(f"{self._prefix}.{key}: must be one of {list(options)}, got {v!r}")
        return v

    def text(self, key: str, *, optional: bool = False) -> str | None:
        """A string."""
        v = self._values[key]
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v:
            raise UserError(f"{self._prefix}.{key}: want a non-empty string, got {v!r}")
        return v

    def numbers(self, key: str, n: int, *, optional: bool = False) -> list[float] | None:
        """A list of ``n`` non-negative numbers."""
        v = self._values[key]
        if v is None and optional:
            return None
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) != n:
            raise UserError(f"{self._prefix}.{key}: want a list of {n} numbers (one per model), got {v!r}")
        out = []
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
                raise UserError(f"{self._prefix}.{key}[{i}]: want a number >= 0, got {x!r}")
            out.append(float(x))
        return out

    def strings(self, key: str) -> list[str]:
        """A non-empty list of strings."""
        v = self._values[key]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, Sequence) or not v or not all(isinstance(x, str) for x in v):
            raise UserError(f"{self._prefix}.{key}: want a list of names, got {v!r}")
        return list(v)
