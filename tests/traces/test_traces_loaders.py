"""Row counts and basic properties of every vendored trace family."""

import numpy as np
import pytest

from warmsim.traces import registry, servegen

REQUEST_ROWS = {"azure2023_code": 8819, "azure2023_conv": 19366, "mooncake_conv": 12031, "mooncake_synthetic": 3993}


@pytest.mark.parametrize("name,rows", sorted(REQUEST_ROWS.items()))
def test_request_traces_row_counts(name, rows):
    df = registry.load_trace(name)
    assert len(df) == rows
    assert list(df.columns[:4]) == ["arrival_s", "model", "prompt_tokens", "output_tokens"]
    assert df["arrival_s"].iloc[0] == 0.0
    assert np.all(np.diff(df["arrival_s"].to_numpy()) >= 0)
    assert (df["prompt_tokens"] >= 1).all()


def test_mooncake_keeps_hash_ids_and_ms_units():
    df = registry.load_trace("mooncake_conv")
    assert isinstance(df["hash_ids"].iloc[0], list)
    assert df["arrival_s"].iloc[-1] == pytest.approx(3536.999)


@pytest.mark.parametrize("name,total", [("azure2024_code", 16_803_695), ("azure2024_conv", 27_303_999)])
def test_azure2024_counts(name, total):
    counts = registry.load_counts(registry.resolve(name))
    assert len(counts) == 60_481
    assert int(counts["count"].sum()) == total
    assert counts.attrs["span_s"] == 7 * 86400


def test_azure2024_window_generation_matches_counts():
    counts = registry.load_counts(registry.resolve("azure2024_code"))
    df = registry.load_trace("azure2024_code", start_s=3600, duration_s=600, seed=3)
    lab = counts["bin_s"].to_numpy()
    inner = counts["count"].to_numpy()[(lab > 3600) & (lab < 4200)].sum()
    edge = counts["count"].to_numpy()[(lab == 3600) | (lab == 4200)].sum()
    assert inner <= len(df) <= inner + edge
    assert df["arrival_s"].min() >= 3600 and df["arrival_s"].max() < 4200


def test_azure2024_needs_window():
    from warmsim.sim.errors import UserError

    with pytest.raises(UserError, match="window"):
        registry.load_trace("azure2024_conv")


def test_servegen_all_models_rows():
    expected = {"m-large": (162, 2016), "m-mid": (109, 2016), "m-small": (43, 2016), "deepseek-r1": (73, 144),
                "mm-image": (35, 144)}
    for model, (clients, windows) in expected.items():
        t = registry.load_rates(registry.resolve(f"servegen_{model}"))
        assert t["client"].nunique() == clients
        assert len(t) == clients * windows
        assert t.attrs["window_s"] == 600


def test_servegen_generated_rate_matches_recorded():
    t = registry.load_rates(registry.resolve("servegen_mm-image"))
    rows = servegen.windows_in_range(t, 0, 86400)
    arr, _ = servegen.generate_arrivals(rows, 1.0, 600.0, np.random.default_rng(0))
    expected = (rows["rate"] * 600).sum()
    assert abs(len(arr) - expected) < 5 * np.sqrt(expected)
    assert arr.min() >= 0 and arr.max() < 86400


def test_registry_unknown_name():
    from warmsim.sim.errors import UserError

    with pytest.raises(UserError, match="unknown trace name"):
        registry.resolve("no_such_trace")
