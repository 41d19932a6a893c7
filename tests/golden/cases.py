"""The golden runs: each a set of hydra overrides, the systems it runs and the file it is compared with.

``small``: one node, two 7B models, every main system (the original golden run).
``paper``: the paper setup shrunk to seconds: 2 nodes x 8 GPUs, Llama 7B x2 (TP1), 13B (TP2), 70B (TP4),
the artifact's workload recipe at 30 req/s for 2 minutes with 60 GiB GPUs and an 8-s router timeout,
so that evictions (warmserve), preemptions (muxserve) and drops (sllm, muxserve) all occur; MuxServe is
planned at the run's own rate (``plan_rps=null``): planned for 15 req/s its caps are too small for a
preemption to occur.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GoldenCase:
    """One golden run."""

    name: str
    overrides: tuple[str, ...]
    systems: tuple[str, ...]

    @property
    def csv(self) -> Path:
        """The stored summary."""
        return HERE / f"{self.name}_summary.csv"

    @property
    def meta(self) -> Path:
        """Where the stored summary came from (commit, overrides, command)."""
        return HERE / f"{self.name}_summary.meta.json"


CASES = {
    "small": GoldenCase("small", ("cluster=tiny", "cluster.gpus_per_node=4", "models=pair7b", "workload=warmserve_conv",
                                  "workload.rps=3", "workload.duration_s=600", "seed=7"),
                        ("static", "ondemand", "sllm", "muxserve", "warmserve")),
    "paper": GoldenCase("paper", ("cluster=h100x16", "models=paper4", "workload=warmserve_conv", "workload.rps=30",
                                  "workload.duration_s=120", "cluster.gpu_hbm_gib=60", "sim.request_timeout_s=8",
                                  "seed=3", "++overrides.muxserve.initial.plan_rps=null"),
                        ("static", "sllm", "muxserve", "warmserve")),
}


def run_case(case: GoldenCase) -> pd.DataFrame:
    """The case's summary, every system concatenated, as the CSV round trip reads it back."""
    import warnings

    from hydra import compose, initialize_config_dir

    from warmsim.experiments.builder import CONF_DIR, build_setup
    from warmsim.experiments.runner import run_system
    from warmsim.experiments.systems import resolve
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=list(case.overrides))
            setup = build_setup(cfg)
            runs = [run_system(setup, scfg, cfg) for scfg in resolve(cfg, list(case.systems))]
    summary = pd.concat([r.summary for r in runs], ignore_index=True)
    return pd.read_csv(pd.io.common.StringIO(summary.to_csv(index=False)))
