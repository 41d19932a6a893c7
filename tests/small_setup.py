"""The small setup the config and ablation tests build systems on: a tiny cluster of 4 GPUs, two 7B
models, the artifact's conversation recipe at 1 req/s."""

from __future__ import annotations

import warnings

from warmsim.experiments.api import config
from warmsim.experiments.builder import build_setup

SMALL = ["cluster=tiny", "cluster.gpus_per_node=4", "models=pair7b", "workload=warmserve_conv", "workload.rps=1"]


def small_setup(duration_s: int):
    """``(cfg, setup)`` of the small setup with ``duration_s`` seconds of traffic (cost-model notes
    silenced)."""
    cfg = config(*SMALL, f"workload.duration_s={duration_s}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cfg, build_setup(cfg)
