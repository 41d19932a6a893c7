"""Every knob of a shipped policy and every mechanism flag has bounds in the schema of the config keys
(sim/knobs.py; issue 22 §6), checked where the object is made."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest

from warmsim.experiments.builder import POLICY_SLOTS, _policy_class
from warmsim.experiments.confpath import compose, group_choices
from warmsim.policies.bundle import MECHANISM_KNOBS, POLICY_FIELDS, Bundle
from warmsim.sim.knobs import KnobError, knobs_of

#: Constructor arguments that are not config knobs: the builder fills them from the run (costs,
#: sharing model, predictor inputs, static sizing from the workload); each class checks them itself.
FILLED_BY_THE_BUILDER = {"costs", "sharing", "history", "truth", "instances"}


def shipped_policy_classes() -> dict[str, type]:
    out = {}
    for name in group_choices("system"):
        scfg = compose([f"system={name}"]).system
        for slot in POLICY_SLOTS:
            node = scfg.get(slot)
            if node is not None:
                out[str(node["_target_"])] = _policy_class(node)
    return out


def arguments(cls) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


CLASSES = shipped_policy_classes()


@pytest.mark.parametrize("target", sorted(CLASSES))
def test_every_argument_of_a_shipped_policy_is_bounded(target):
    cls = CLASSES[target]
    missing = [a for a in arguments(cls) if a not in knobs_of(cls) and a not in FILLED_BY_THE_BUILDER]
    assert not missing, f"{target}: arguments without a Knob: {missing}"


@pytest.mark.parametrize("target", sorted(CLASSES))
def test_every_number_knob_rejects_nan_and_values_past_its_bounds(target):
    # the class check, not the builder's: Python code that builds the policy gets the same one line
    cls = CLASSES[target]
    needs = {"truth": {}} if "truth" in arguments(cls) else {}
    for name, knob in knobs_of(cls).items():
        if knob.kind not in ("int", "float"):
            continue
        bad = [math.nan, "x"] + ([knob.lo - 1] if knob.lo is not None else []) + (
            [knob.hi * 2 + 1] if knob.hi is not None else [])
        for v in bad:
            with pytest.raises(KnobError, match=rf"^{cls.__name__}\.{name}: got "):
                cls(**needs, **{name: v})


def test_mechanism_flags_are_the_bundle_fields_that_are_not_policies():
    fields = {f.name for f in dataclasses.fields(Bundle)}
    assert set(MECHANISM_KNOBS) == fields - set(POLICY_FIELDS)
