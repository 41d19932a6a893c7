"""Golden end-to-end runs: a small multi-model setup under every main system must reproduce the
stored summary exactly (same config + seed = same result). After an intended change of the model,
regenerate with ``WARMSIM_REGEN_GOLDEN=1 python -m pytest tests/golden`` and explain it in the commit."""

import os
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from experiments.builder import CONF_DIR, build_setup, system_config
from experiments.runner import run_system

GOLDEN = Path(__file__).with_name("small_summary.csv")
OVERRIDES = ["cluster=tiny", "cluster.gpus_per_node=4", "models=pair7b", "workload=warmserve_conv",
             "workload.rps=3", "workload.duration_s=600", "seed=7"]
SYSTEMS = ["static", "ondemand", "sllm", "muxserve", "warmserve"]


@pytest.fixture(scope="module")
def summary():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=OVERRIDES)
        setup = build_setup(cfg)
        runs = [run_system(setup, system_config(s), cfg) for s in SYSTEMS]
    return pd.concat([r.summary for r in runs], ignore_index=True)


def test_small_setup_matches_the_golden_summary(summary):
    if os.environ.get("WARMSIM_REGEN_GOLDEN"):
        summary.to_csv(GOLDEN, index=False)
    golden = pd.read_csv(GOLDEN)
    got = pd.read_csv(pd.io.common.StringIO(summary.to_csv(index=False)))
    pd.testing.assert_frame_equal(got, golden, check_exact=False, rtol=1e-9)


def test_every_system_completes_the_small_workload(summary):
    allrows = summary[summary.model == "ALL"].set_index("system")
    assert (allrows.completed + allrows.dropped == allrows.requests).all()
    assert allrows.loc["static", "cold_starts"] == 0 and allrows.loc["muxserve", "cold_starts"] == 0
    assert allrows.loc["ondemand", "cold_starts"] >= 1
