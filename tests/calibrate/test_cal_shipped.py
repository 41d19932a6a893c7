"""Every shipped profile (today the analytic one; a measured one joins when a GPU run lands) loads,
says honestly what it is, and answers an estimate."""

from __future__ import annotations

import warnings

import pytest

from warmsim.calibrate.estimate import EstimateRequest, estimate
from warmsim.calibrate.sanity import check_profile
from warmsim.sim.costmodel import ProfileCostModel
from warmsim.sim.costprofile.profile import load_profile
from warmsim.sim.costprofile.shipped import known_profiles, resolve


@pytest.mark.parametrize("name", known_profiles())
def test_shipped_profile_is_complete_and_labelled(name):
    prof = load_profile(resolve(name))
    assert prof.name == name, "meta.json's name must match the directory a user selects it by"
    meta = prof.meta
    if prof.measured:
        assert meta["gpu"].get("name") and meta["gpu"].get("driver") and meta["gpu"].get("torch")
        assert "NOT MEASURED" not in meta["label"].upper() and "FAKE" not in meta["label"].upper()
    else:
        assert "NOT MEASURED" in meta["label"].upper()
    for sec, status in meta["sections"].items():
        assert status["status"] in ("ok", "failed"), sec
        assert status["status"] == "ok" or status.get("reason"), f"{sec} failed without a reason"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = ProfileCostModel.load(name)
        est = estimate(EstimateRequest("llama-2-7b", name, "host_pinned", 1024), cost)
    assert 0 < est.prefill_s < est.ttft_s
    assert check_profile(cost.fitted)  # the sanity table can be drawn for it
