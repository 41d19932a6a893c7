"""Shared fixtures of the calibrate tests."""

from __future__ import annotations

import pytest

from warmsim.sim.costmodel import ProfileCostModel


@pytest.fixture(scope="session")
def analytic_cost() -> ProfileCostModel:
    """The shipped analytic H100 profile as a cost model."""
    return ProfileCostModel.load("h100_analytic")
