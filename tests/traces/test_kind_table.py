"""One table per extension point, read everywhere (issue 21): the config validation takes the workload
kinds and their knobs from the kinds' table (``traces/builders.py`` ``KINDS``) and the memory switches
from the memory-switch table (``sim/memswitch``), so a new entry there is known to validation too."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from warmsim.experiments.validate import check_mechanism_names, check_workload
from warmsim.sim.errors import UserError
from warmsim.sim.memswitch import MEMSWITCHES
from warmsim.traces.builders import KINDS, build_workload
from warmsim.traces.workload import Workload


def test_every_kind_of_the_table_validates_with_its_own_defaults():
    for name, kind in KINDS.items():
        assert check_workload({"kind": name, **kind.DEFAULTS}) is not None
    with pytest.raises(UserError, match="allowed: one of " + ", ".join(KINDS)):
        check_workload({"kind": "nope"})


def _even(cfg, models, rng):
    """A toy kind: ``n`` requests one second apart, round robin over the models."""
    n = int(cfg.get("n", 3))
    t = np.arange(n, dtype=float)
    return Workload(t, (np.arange(n) % len(models)).astype(np.int32), np.full(n, 8, np.int32),
                    np.full(n, 2, np.int32), tuple(models), duration_s=float(n))


EVEN = SimpleNamespace(DEFAULTS={"n": 3, "total_rate": 1.0, "duration_s": 10.0}, build=_even)


def test_a_kind_added_to_the_table_is_validated_and_built(monkeypatch):
    monkeypatch.setitem(KINDS, "even", EVEN)
    assert check_workload({"kind": "even", "n": 4})["n"] == 4
    with pytest.raises(UserError, match=r"workload\.m: unknown key for kind 'even' \(known: n, total_rate, duration_s\)"):
        check_workload({"kind": "even", "m": 4})
    # its rate knobs bound the workload's size as the shipped kinds' do (1e6 req/s x 1e3 s > 5e7)
    with pytest.raises(UserError, match="workload.duration_s: 1000 s at 1e.06 req/s"):
        check_workload({"kind": "even", "total_rate": 1e6, "duration_s": 1000.0})
    wl = build_workload({"kind": "even", "n": 4}, ["a", "b"], seed=0)
    assert list(wl.model) == [0, 1, 0, 1] and list(wl.arrival_s) == [0.0, 1.0, 2.0, 3.0]


@dataclass(frozen=True)
class _NoWait:
    name: str = "no_wait"


def test_the_memory_switch_comes_from_its_table(monkeypatch):
    with pytest.raises(UserError) as e:
        check_mechanism_names({"memswitch": "magic"})
    assert str(e.value) == ("config key system.mechanisms.memswitch: got 'magic'; allowed: one of "
                            f"{', '.join(MEMSWITCHES)} (sim/memswitch/)")
    monkeypatch.setitem(MEMSWITCHES, "no_wait", _NoWait())
    check_mechanism_names({"memswitch": "no_wait"})
    check_mechanism_names(None)  # a system without mechanisms: the defaults
