"""Every shipped config composes, and every system builds its policies on a small setup."""


import pytest
from hydra import compose, initialize_config_dir

from tests.small_setup import small_setup
from warmsim.experiments.builder import CONF_DIR, group_choices, system_config
from warmsim.experiments.runner import build_system_bundle


@pytest.fixture(scope="module")
def small():
    return small_setup(60)


@pytest.mark.parametrize("name", group_choices("system"))
def test_every_system_builds(small, name):
    cfg, setup = small
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config(name)
    bundle = build_system_bundle(setup, scfg, cfg)
    assert bundle.name == name
    assert bundle.router is not None and bundle.autoscaler is not None
    assert bundle.activator is not None or bundle.initial is not None


@pytest.mark.parametrize("group", ["cluster", "models", "workload", "cost", "slo", "predictor", "placer"])
def test_every_group_choice_composes(group):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        for choice in group_choices(group):
            if group in ("predictor", "placer"):  # nested in system: `predictor@system.predictor=oracle`
                cfg = compose(config_name="config", overrides=["system=warmserve", f"{group}@system.{group}={choice}"])
                assert cfg.system[group]._target_.startswith("warmsim.policies.")
            else:
                cfg = compose(config_name="config", overrides=[f"{group}={choice}"])
                assert cfg[group] is not None


@pytest.mark.parametrize("name", group_choices("experiment"))
def test_every_experiment_overlay_composes_and_passes_the_schema(name):
    from warmsim.experiments.validate import check_config
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[f"experiment={name}"])
        check_config(cfg)
        for s in cfg.get("systems") or []:
            assert system_config(s).name == s


def test_the_oracle_needs_the_runners_pre_pass(small):
    """The builder never runs a simulation: an oracle built without the runner's pre-pass is one line
    naming what is missing; the runner's step hands the pre-pass's truth over."""
    from warmsim.experiments.builder import build_bundle
    from warmsim.experiments.runner import prepass_inputs
    from warmsim.sim.errors import UserError
    cfg, setup = small
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config("warmserve_oracle")
        with pytest.raises(UserError, match="needs truth, observed in a pre-pass"):
            build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg)
        pre = prepass_inputs(setup, scfg, cfg)
        assert set(pre) == {"truth"} and set(pre["truth"]) == set(setup.workload.models)
        assert prepass_inputs(setup, system_config("warmserve"), cfg) == {}  # the CSP: no pre-pass
        bundle = build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg, prepass=pre)
    name = next(iter(pre["truth"]))
    assert bundle.predictor.predict(name, 0) == pytest.approx(tuple(pre["truth"][name][0]))


def test_a_run_imports_nothing_of_calibrate(tmp_path):
    """Running (config, cost model, the oracle's pre-pass, a run, the run directory) needs no module of
    calibrate/: the runtime cost model is the simulator's (sim/costmodel.py)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys, warnings; warnings.simplefilter('ignore')\n"
            "from warmsim.experiments.api import compare\n"
            "from tests.small_setup import SMALL\n"
            f"compare([*SMALL, 'workload.duration_s=60', 'systems=[warmserve_oracle]'], out={str(tmp_path / 'run')!r})\n"
            "print(sorted(m for m in sys.modules if m.startswith('warmsim.calibrate')))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "WARMSIM_CACHE_DIR": str(tmp_path / "cache")}).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "run" / "summary.csv").is_file()
