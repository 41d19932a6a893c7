"""Workload builders: one entry point, :func:`build_workload`, dispatching on ``cfg["kind"]``.

The kinds are one table, :data:`KINDS` (kind name -> its module); the builder and the config
validation (``experiments/validate.py``) both read it, so a new kind is one module in
:mod:`warmsim.traces.kinds`, one entry here and its YAML (``docs/extending.md``).

Kinds (see each module in :mod:`warmsim.traces.kinds` and ``experiments/conf/workload/*.yaml``):

* ``warmserve``: the WarmServe paper's recipe on the Azure 2024 week;
* ``servegen``: ServeGen client series on N models;
* ``mapped``: one single-service trace split onto N models by a power law;
* ``synthetic``: Poisson / Gamma arrivals with optional diurnal modulation;
* ``trace``: a per-request trace replayed with its own ``model`` column (by name or ``model_map``).

Every kind also takes ``prefix`` (:mod:`warmsim.traces.prefix`): a multi-turn recipe that gives
requests shared prompt prefixes when the source has no ``hash_ids``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from warmsim.sim.errors import UserError
from warmsim.traces import prefix
from warmsim.traces.kinds import mapped, servegen_kind, synthetic, trace, warmserve
from warmsim.traces.workload import Workload


class WorkloadKind(Protocol):
    """A trace family: a module of :mod:`warmsim.traces.kinds` with its knobs and a builder."""

    @property
    def DEFAULTS(self) -> Mapping[str, Any]:
        """Every knob the kind takes with its default (a key outside it is a config error)."""
        ...

    def build(self, cfg: dict, models: list[str], rng: np.random.Generator) -> Workload:
        """The workload that ``cfg`` (the kind's knobs, ``kind`` and ``prefix`` removed) describes
        for ``models``, drawn with ``rng``."""
        ...


#: Every workload kind by name (``workload.kind``).
KINDS: dict[str, WorkloadKind] = {"warmserve": warmserve, "servegen": servegen_kind, "mapped": mapped,
                                  "synthetic": synthetic, "trace": trace}


def build_workload(cfg: Mapping, models: Sequence[str], seed: int | np.random.Generator) -> Workload:
    """Build the workload that ``cfg`` (the ``workload`` config node as a dict) describes.

    Args:
        cfg: mapping with ``kind`` and that kind's knobs.
        models: served-model names; model j of the workload is ``models[j]``.
        seed: int seed or a ``numpy.random.Generator``; the same seed gives identical arrays.

    Raises:
        UserError: unknown kind or key, bad value, window outside the trace, unreadable trace file.
    """
    if not isinstance(cfg, Mapping):
        raise UserError(f"workload: want a mapping with a 'kind' key, got {type(cfg).__name__}")
    kind = cfg.get("kind")
    if kind not in KINDS:
        raise UserError(f"workload.kind: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    models = [str(m) for m in models]
    if not models:
        raise UserError("workload: no models to serve")
    if len(set(models)) != len(models):
        raise UserError(f"workload: model names must be distinct, got {models}")
    rng = np.random.default_rng(seed)
    cfg = dict(cfg)
    recipe = cfg.pop("prefix", None)
    wl = prefix.apply(KINDS[kind].build(cfg, models, rng), recipe, rng)
    wl.meta.setdefault("seed", int(seed) if isinstance(seed, (int, np.integer)) else None)
    return wl
