"""Every shipped config composes, and every system builds its policies on a small setup."""


import pytest
from hydra import compose, initialize_config_dir

from tests.small_setup import small_setup
from warmsim.experiments.builder import CONF_DIR, build_bundle, group_choices, system_config


@pytest.fixture(scope="module")
def small():
    return small_setup(60)


@pytest.mark.parametrize("name", group_choices("system"))
def test_every_system_builds(small, name):
    cfg, setup = small
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        scfg = system_config(name)
    bundle = build_bundle(scfg, setup.workload, setup.models, setup.cluster, setup.cost, cfg)
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
