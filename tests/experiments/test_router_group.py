"""The ``router/`` config group (issue 21): a router is swapped without a whole system overlay, as a
placer or a predictor is, and the shipped systems keep their routers."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.small_setup import small_setup
from warmsim.experiments.api import config
from warmsim.experiments.builder import CONF_DIR, group_choices, system_config
from warmsim.experiments.runner import build_system_bundle
from warmsim.experiments.systems import resolve
from warmsim.policies.muxserve import MuxServeRouter
from warmsim.policies.routing import LeastLoadedRouter
from warmsim.policies.sllm import SllmRouter
from warmsim.sim.errors import UserError

#: Every shipped system's router, written out by hand (class, its one knob).
SHIPPED = {
    "static": (LeastLoadedRouter, "max_inflight", None), "prism": (LeastLoadedRouter, "max_inflight", None),
    "ondemand": (LeastLoadedRouter, "max_inflight", 32), "peerload": (LeastLoadedRouter, "max_inflight", 32),
    "hydraserve": (LeastLoadedRouter, "max_inflight", 32), "warmserve": (LeastLoadedRouter, "max_inflight", 32),
    "sllm": (SllmRouter, "max_queue_length", 32), "sllm_ssd": (SllmRouter, "max_queue_length", 32),
    "vllm_sleep": (SllmRouter, "max_queue_length", 32),
    "muxserve": (MuxServeRouter, "max_num_seqs", 256), "muxserve_replicated": (MuxServeRouter, "max_num_seqs", 256),
}
#: Systems that inherit their router from another system file.
INHERITS = {"sllm_keepalive60": "sllm", "sllm_remote": "sllm", "vllm_sleep_l2": "vllm_sleep"}


@pytest.fixture(scope="module")
def small():
    return small_setup(60)


def _router(small, scfg):
    cfg, setup = small
    return build_system_bundle(setup, scfg, cfg).router  # the runner's path: an oracle gets its pre-pass


@pytest.mark.parametrize("name", group_choices("system"))
def test_every_shipped_system_keeps_its_router(small, name):
    base = INHERITS.get(name, "warmserve" if name.startswith("warmserve") else name)
    cls, knob, value = SHIPPED[base]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        router = _router(small, system_config(name))
    assert type(router) is cls and getattr(router, knob) == value


def test_every_router_choice_composes_into_a_system():
    assert group_choices("router") == ["least_loaded", "least_loaded_uncapped", "muxserve", "sllm"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        for choice in group_choices("router"):
            cfg = compose(config_name="config", overrides=["system=ondemand", f"router@system.router={choice}"])
            assert cfg.system.router == OmegaConf.load(CONF_DIR / "router" / f"{choice}.yaml")


def test_a_compared_system_takes_a_router_by_name(small):
    cfg = config("systems=[ondemand,static]", "overrides.ondemand.router=sllm")
    by_name = {s.name: s for s in resolve(cfg)}
    assert type(_router(small, by_name["ondemand"])) is SllmRouter
    assert _router(small, by_name["ondemand"]).max_queue_length == 32
    assert type(_router(small, by_name["static"])) is LeastLoadedRouter  # the other system keeps its own


def test_an_unknown_router_name_is_one_line_naming_the_choices(small):
    cfg = config("systems=[ondemand]", "overrides.ondemand.router=nope")
    with pytest.raises(UserError) as e:
        _router(small, resolve(cfg)[0])
    assert str(e.value) == ("system ondemand: config key router: got 'nope'; allowed: null, a policy (a mapping "
                            "with _target_) or a config of router/ (least_loaded, least_loaded_uncapped, muxserve, "
                            "sllm)")


def test_a_router_outside_every_system_is_an_error_not_ignored():
    with pytest.raises(UserError, match=r"config key router: a policy outside a system is used by none; swap a "
                                        r"system's: router@system.router=NAME"):
        config("systems=[ondemand]", "+router=sllm")
