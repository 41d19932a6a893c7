"""Fitting recovers known parameters; extrapolation warns."""

from __future__ import annotations

import random

import pytest

from warmsim.calibrate.analytic import H100Params
from warmsim.calibrate.harness.fake import FakeDevice
from warmsim.calibrate.harness.plan import QUICK
from warmsim.calibrate.harness.runner import run_sweep
from warmsim.sim.costprofile.curves import ExtrapolationWarning, PiecewiseLinear, fit_linear
from warmsim.sim.costprofile.fit import fit_bandwidth, fit_profile
from warmsim.sim.costprofile.profile import load_profile


def test_bandwidth_fit_recovers_latency_and_bandwidth():
    rng = random.Random(1)
    lat, bw = 20e-6, 23e9
    rows = [{"bytes": n, "seconds": (lat + n / bw) * (1 + rng.uniform(-0.01, 0.01)), "rep": r}
            for n in (2**20 * 4**k for k in range(7)) for r in range(5)]
    f = fit_bandwidth("test", rows)
    assert f.bytes_per_s == pytest.approx(bw, rel=0.02)
    assert f.latency_s == pytest.approx(lat, abs=5e-6)
    assert f.fit.points  # raw medians are kept


def test_linear_fit_two_regressors():
    base, per_seq, per_ctx = 1e-3, 2e-5, 3e-8
    xs, ys = [], []
    for b in (1, 4, 16, 64):
        for c in (128, 1024, 4096):
            xs.append([b, b * c])
            ys.append(base + per_seq * b + per_ctx * b * c)
    f = fit_linear("decode", xs, ys)
    assert f.intercept == pytest.approx(base, rel=1e-6)
    assert f.coef[0] == pytest.approx(per_seq, rel=1e-6)
    assert f.coef[1] == pytest.approx(per_ctx, rel=1e-6)
    assert f.residual_rms() < 1e-9


def test_negative_coefficients_are_dropped():
    f = fit_linear("flat", [[1], [2], [3]], [1.0, 0.99, 0.98])
    assert f.coef[0] == 0.0 and f.intercept == pytest.approx(0.99, rel=1e-3)


def test_piecewise_interpolates_and_warns_outside():
    c = PiecewiseLinear.from_points("pw", {32: 1.0, 64: 2.0, 128: 6.0})
    assert c(48) == pytest.approx(1.5)
    assert c(96) == pytest.approx(4.0)
    with pytest.warns(ExtrapolationWarning, match="pw"):
        assert c(256) == pytest.approx(14.0)
    with pytest.warns(ExtrapolationWarning):
        assert c(1) == 1.0


def test_linear_fit_warns_outside_range():
    f = fit_linear("lin", [[1], [10]], [1.0, 10.0])
    with pytest.warns(ExtrapolationWarning, match=r"lin: query outside the profile's range \[1, 10\]"):
        f(100)


def test_fit_of_fake_sweep_recovers_parameters(tmp_path):
    """A jittery fake sweep, fitted, gives back the parameters it was generated from."""
    p = H100Params()
    run_sweep(FakeDevice(p, jitter=0.02, seed=3), tmp_path, QUICK, name="fake")
    fp = fit_profile(load_profile(tmp_path))
    assert fp.copies[("h2d", "pinned")].bytes_per_s == pytest.approx(p.h2d_pinned_bytes_per_s, rel=0.05)
    assert fp.copies[("h2d", "pageable")].bytes_per_s == pytest.approx(p.h2d_pageable_bytes_per_s, rel=0.05)
    assert fp.disk_cold.bytes_per_s == pytest.approx(p.nvme_bytes_per_s, rel=0.1)
    assert fp.vmm["create"].per_call_s(2 << 20) == pytest.approx(p.vmm_create_s, rel=0.1)
    assert fp.vmm["remap"].per_call_s(2 << 20) == pytest.approx(p.vmm_map_s + p.vmm_set_access_s, rel=0.1)
    assert fp.malloc.fit.intercept == pytest.approx(p.malloc_call_s, rel=0.2)
    assert fp.process_s == pytest.approx(p.python_start_s + p.import_torch_s + p.cuda_context_s + p.first_gemm_s,
                                         rel=0.05)
    assert fp.interference.compute_slowdown == pytest.approx(p.compute_slowdown, abs=0.03)
