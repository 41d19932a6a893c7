"""What one system's run produced: :class:`RunResult`, the tables the runner collects and the run
directory's writer (:mod:`warmsim.experiments.outputs`) reads."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class RunResult:
    """Tables of one system's run."""

    system: str
    summary: pd.DataFrame
    requests: pd.DataFrame
    timeline: pd.DataFrame
    predictions: pd.DataFrame
    wall_s: float = 0.0
    #: GPUs the system could use (a system may see fewer than the cluster: ``visible_nodes``).
    gpus_visible: int = 0
    #: The instances present from time 0, one line each (model, GPUs, TP, share, cap).
    placement: tuple[str, ...] = ()
    #: SimPy events the run scheduled (``warmsim bench`` reports them per request).
    events: int = 0
    #: The system's resolved config (written to ``systems/<name>.yaml``).
    config: dict | None = None
    #: The faults of the run and what each took: (time, fault, instances, replicas, retried, dropped).
    faults: tuple = ()
    #: One row per engine step (``output.steps``; empty otherwise).
    steps: pd.DataFrame | None = None
    #: What each serving mechanism did (sleep, pipeline, kv_balloon: sim/mechanisms), one line each.
    mechanisms: tuple[str, ...] = ()
