"""Workload builders: the WarmServe recipe, mapped, servegen, synthetic; determinism."""

import numpy as np
import pytest

from warmsim.sim.errors import UserError
from warmsim.traces.builders import build_workload

MODELS4 = ["m0", "m1", "m2", "m3"]


@pytest.fixture(scope="module")
def warm():
    return build_workload({"kind": "warmserve", "trace": "conv", "rps": 20, "alpha": 2}, MODELS4, seed=7)


def test_warmserve_shares(warm):
    warm.validate()
    counts = np.bincount(warm.model, minlength=4)
    want = np.array([1, 1 / 4, 1 / 9, 1 / 16])
    want = want / want.sum()
    got = counts / counts.sum()
    # Different days have different intra-hour shapes, so the first 20 minutes are not an exact share.
    assert np.allclose(got, want, rtol=0.25, atol=0.005)
    assert counts[0] > counts[1] > counts[2] > counts[3] > 0
    total_hour = sum(m["window_requests_sampled"] for m in warm.meta["per_model"])
    assert total_hour == 3600 * 20
    sampled = [m["window_requests_sampled"] for m in warm.meta["per_model"]]
    assert np.allclose(np.array(sampled) / total_hour, want, atol=1e-4)


def test_warmserve_days_caps_duration(warm):
    dates = [m["date"] for m in warm.meta["per_model"]]
    assert len(set(dates)) == 4
    assert [m["weekday"] for m in warm.meta["per_model"]] == ["Thu", "Fri", "Sat", "Sun"]
    assert warm.prompt_tokens.max() <= 1024 - 8  # capped, then sent 8 tokens shorter (the artifact's client)
    assert warm.output_tokens.min() >= 3 and warm.output_tokens.max() <= 1023
    assert warm.arrival_s.max() < 1200 and warm.duration_s == 1200
    for name, days in zip(MODELS4, (3, 4, 5, 6)):  # Mon up to the day before Thu, Fri, Sat, Sun
        hist = warm.history[name]
        assert len(hist) == days
        for h in hist:
            assert h.shape[1] == 2 and h[:, 0].min() >= 0 and h[:, 0].max() < 3600


def test_warmserve_deterministic(warm):
    again = build_workload({"kind": "warmserve", "trace": "conv", "rps": 20, "alpha": 2}, MODELS4, seed=7)
    for col in ("arrival_s", "model", "prompt_tokens", "output_tokens"):
        assert np.array_equal(getattr(warm, col), getattr(again, col))
    for name in MODELS4:
        assert all(np.array_equal(a, b) for a, b in zip(warm.history[name], again.history[name]))
    other = build_workload({"kind": "warmserve", "trace": "conv", "rps": 20, "alpha": 2}, MODELS4, seed=8)
    assert not np.array_equal(warm.arrival_s[:100], other.arrival_s[:100])


def test_warmserve_burstiness_and_code():
    wl = build_workload({"kind": "warmserve", "trace": "code", "rps": 5, "burstiness_cv": 4.0, "history_days": 0},
                        ["a", "b"], seed=1)
    gaps = np.diff(wl.arrival_s[wl.model == 0])
    assert gaps.std() / gaps.mean() > 2.0
    assert wl.history == {"a": [], "b": []}


def _same(a, b):
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in ("arrival_s", "model", "prompt_tokens", "output_tokens"))


@pytest.mark.parametrize("cfg,models", [
    ({"kind": "mapped"}, MODELS4),
    ({"kind": "mapped", "rate_scale": 1.5, "time_scale": 2.0, "duration_s": 600}, ["a", "b"]),
    ({"kind": "mapped", "rate_scale": 0.3, "trace": "mooncake_conv"}, ["a", "b"]),
    ({"kind": "synthetic", "process": "gamma", "cv": 2.0, "diurnal_amplitude": 0.5, "diurnal_period_s": 600,
      "history_days": 1}, ["a", "b", "c"]),
    ({"kind": "synthetic", "rates": [1.0, 2.0], "tokens_from": None}, ["a", "b"]),
    ({"kind": "servegen", "servegen_models": ["deepseek-r1", "mm-image"], "duration_s": 1800}, ["r1", "vl"]),
    ({"kind": "servegen", "source": "clients", "servegen_models": ["deepseek-r1"], "mapping": "contiguous",
      "duration_s": 1800}, MODELS4),
])
def test_kinds_deterministic(cfg, models):
    a = build_workload(cfg, models, seed=11)
    b = build_workload(cfg, models, seed=11)
    c = build_workload(cfg, models, seed=12)
    a.validate()
    assert len(a) > 0 and _same(a, b) and not _same(a, c)
    assert a.meta["kind"] == cfg["kind"]


def test_mapped_default_shares_and_meta():
    wl = build_workload({"kind": "mapped", "alpha": 2}, MODELS4, seed=0)
    assert wl.meta["knobs"]["rate_scale"] == 1.0
    assert len(wl) == wl.meta["trace_requests_in_window"]
    got = np.bincount(wl.model, minlength=4) / len(wl)
    want = np.array([1, 1 / 4, 1 / 9, 1 / 16]) / sum([1, 1 / 4, 1 / 9, 1 / 16])
    assert np.allclose(got, want, atol=0.02)


def test_mapped_rate_scale_changes_volume():
    base = len(build_workload({"kind": "mapped"}, ["a"], seed=0))
    double = len(build_workload({"kind": "mapped", "rate_scale": 2.0}, ["a"], seed=0))
    assert double == 2 * base


def test_servegen_total_rate_and_striping():
    wl = build_workload({"kind": "servegen", "source": "clients", "servegen_models": ["mm-image"], "total_rate": 5,
                         "duration_s": 3600, "mapping": "striped"}, ["a", "b", "c"], seed=0)
    assert abs(len(wl) - 5 * 3600) < 0.05 * 5 * 3600
    assert wl.meta["streams_per_model"] == [12, 12, 11]


def test_synthetic_rate():
    wl = build_workload({"kind": "synthetic", "total_rate": 20, "alpha": 0, "duration_s": 1000}, ["a", "b"], seed=0)
    assert abs(len(wl) - 20000) < 5 * np.sqrt(20000)


@pytest.mark.parametrize("cfg,match", [
    ({"kind": "nope"}, "workload.kind"),
    ({"kind": "mapped", "bogus": 1}, "workload.bogus"),
    ({"kind": "mapped", "alpha": "x"}, "workload.alpha"),
    ({"kind": "mapped", "start_s": 1e6}, "outside the trace"),
    ({"kind": "mapped", "duration_s": 5000}, "ends after the trace"),
    ({"kind": "mapped", "trace": "nope"}, "unknown trace name"),
    ({"kind": "servegen"}, "workload.servegen_models"),
    ({"kind": "servegen", "servegen_models": ["mm-image"], "start_s": 90000, "source": "clients"}, "outside"),
    ({"kind": "warmserve", "duration_s": 4000}, "workload.duration_s"),
])
def test_config_errors(cfg, match):
    with pytest.raises(UserError, match=match):
        build_workload(cfg, ["a", "b"], seed=0)
