"""MuxServe's measured MPS profile as a table, and the colocated step time built on it."""

from __future__ import annotations

import csv
import statistics

import pytest

from warmsim.policies.muxserve import ColocationSlowdown, MpsSlowdownTable, colocated_step_time
from warmsim.policies.muxserve.slowdown import DEFAULT_TABLE
from warmsim.sim.errors import UserError

SHARES = [0.05, 0.3, 0.35, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]


@pytest.fixture(scope="module")
def table() -> MpsSlowdownTable:
    return MpsSlowdownTable.load()


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with open(DEFAULT_TABLE, newline="") as f:
        return list(csv.DictReader(f))


def _median_ratio(rows, model, gpus, phase, share, batch):
    lat = {(r["sm_share"], int(r["seq_len"])): float(r["latency_s"]) for r in rows
           if (r["model"], int(r["gpus"]), r["phase"], int(r["batch"])) == (model, gpus, phase, batch)}
    return statistics.median(lat[(f"{share:.2f}", sl)] / lat[("1.00", sl)] for s, sl in lat if s == f"{share:.2f}")


def test_shipped_csv_is_tidy(rows):
    assert list(rows[0]) == ["model", "gpus", "phase", "sm_share", "batch", "seq_len", "latency_s", "slowdown"]
    assert len(rows) == 8994  # 10240 entries in llama.json, 1246 of them -1 (not measured)
    assert {r["model"] for r in rows} == {"llama-7b", "llama-13b", "llama-30b", "llama-65b"}
    assert {r["phase"] for r in rows} == {"prefill", "decode"}
    # llama.json: llama-7b / 1 GPU / 50% / batch 64 / seq 512: decoding 29.689 ms against 24.909 ms at 100%
    r = next(r for r in rows if (r["model"], r["gpus"], r["phase"], r["sm_share"], r["batch"], r["seq_len"])
             == ("llama-7b", "1", "decode", "0.50", "64", "512"))
    assert float(r["latency_s"]) == pytest.approx(0.029689) and float(r["slowdown"]) == pytest.approx(1.1919, abs=1e-4)
    for r in rows:
        if r["sm_share"] == "1.00":
            assert r["slowdown"] == "1.0000"


def test_hand_checked_values(table, rows):
    # 7B / 1 GPU decode, batch 64, 50% SMs: the median over seq 32..512 of latency(50%)/latency(100%)
    # is seq 512's 29.689 / 24.909 ms (llama.json).
    assert table.factor("decode", 0.5, 64, params_b=7) == pytest.approx(29.689 / 24.909, rel=1e-4)
    assert table.factor("decode", 0.5, 64, params_b=7) == pytest.approx(
        _median_ratio(rows, "llama-7b", 1, "decode", 0.5, 64), rel=1e-12)
    # batch 32: the median at 50% (14.919/13.183 ms) is below the one at 60% (21.235/18.726 ms), so the
    # monotone fit pools the two.
    m50, m60 = 14.919 / 13.183, 21.235 / 18.726
    assert m50 < m60
    assert table.factor("decode", 0.5, 32, params_b=7) == pytest.approx((m50 + m60) / 2, rel=1e-4)
    assert table.factor("decode", 0.6, 32, params_b=7) == pytest.approx((m50 + m60) / 2, rel=1e-4)
    # between measured shares: linear (bs 64: 50% and 60% are not pooled)
    m60_64 = _median_ratio(rows, "llama-7b", 1, "decode", 0.6, 64)
    assert table.factor("decode", 0.55, 64, params_b=7) == pytest.approx((29.689 / 24.909 + m60_64) / 2, rel=1e-4)
    # between measured batches: linear in log2(batch) (48 is 0.585 of the way from 32 to 64)
    w = 0.5849625007211562
    assert table.factor("decode", 0.5, 48, params_b=7) == pytest.approx(
        (1 - w) * (m50 + m60) / 2 + w * 29.689 / 24.909, rel=1e-4)


def test_default_is_the_mean_of_the_three_configs(table):
    for phase, share, batch in [("decode", 0.5, 32), ("prefill", 0.3, 8), ("decode", 0.7, 200)]:
        each = [table.factor(phase, share, batch, params_b=p) for p in (7, 13, 65)]
        assert table.factor(phase, share, batch) == pytest.approx(sum(each) / 3)
    # closest size: 70B reads the 65B curves, 30B the 13B ones (only 7/13/65 are configured)
    assert table.factor("decode", 0.5, 128, params_b=70) == table.factor("decode", 0.5, 128, params_b=65)
    assert table.factor("decode", 0.5, 128, params_b=30) == table.factor("decode", 0.5, 128, params_b=13)


def test_prefill_slows_more_than_decode(table):
    for batch in (4, 8, 16, 32, 64):
        assert table.factor("prefill", 0.5, batch) > table.factor("decode", 0.5, batch) + 0.3
    # prefill near 1/share once the step has a few hundred tokens, decode far below it
    assert 1.5 < table.factor("prefill", 0.5, 1, tokens=1024) < 2.0
    assert table.factor("decode", 0.5, 16) < 1.15
    # and a tiny prefill barely slows
    assert table.factor("prefill", 0.5, 1, tokens=32) < 1.1


def test_factor_one_at_full_share_and_at_least_one(table):
    for phase in ("prefill", "decode"):
        for batch in (1, 3, 16, 100, 5000):
            assert table.factor(phase, 1.0, batch) == 1.0
            assert table.factor(phase, 1.0, batch, params_b=13) == 1.0
            for s in SHARES:
                assert table.factor(phase, s, batch) >= 1.0


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("params_b", [None, 7, 13, 65])
def test_non_increasing_in_share(table, phase, params_b):
    for batch in (1, 2, 5, 8, 32, 100, 256, 1024, 4096):
        f = [table.factor(phase, s, batch, params_b=params_b) for s in SHARES]
        assert all(a >= b for a, b in zip(f, f[1:])), (batch, f)
    if phase == "prefill":
        for tokens in (16, 32, 100, 512, 1024, 8192, 10 ** 6):
            f = [table.factor(phase, s, 1, tokens=tokens, params_b=params_b) for s in SHARES]
            assert all(a >= b for a, b in zip(f, f[1:])), (tokens, f)


def test_clamped_outside_the_measured_range(table):
    assert table.factor("decode", 0.05, 8) == table.factor("decode", 0.3, 8)  # below 30% SMs
    assert table.factor("decode", 0.5, 10_000, params_b=7) == table.factor("decode", 0.5, 256, params_b=7)
    top = table.curves[("prefill", "llama-7b", 1, "tokens")].xs[-1]  # largest count measured at every share
    assert top >= 256 * 32
    assert table.factor("prefill", 0.5, 1, tokens=10 ** 7, params_b=7) == table.factor(
        "prefill", 0.5, 1, tokens=top, params_b=7)


def test_idle_neighbour_costs_nothing_busy_one_adds_contention(table):
    iso = 0.02
    alone = colocated_step_time(iso, "decode", 0.5, 16, 0, 0.3, table)
    assert alone == pytest.approx(iso * table.factor("decode", 0.5, 16))
    assert colocated_step_time(iso, "decode", 0.5, 16, 1, 0.3, table) == pytest.approx(alone * 1.3)
    assert colocated_step_time(iso, "decode", 0.5, 16, 2, 0.3, table) == pytest.approx(alone * 1.6)
    assert colocated_step_time(iso, "prefill", 1.0, 4, 0, 0.5, table) == iso
    assert colocated_step_time(iso, "prefill", 1.0, 4, 1, 0.5, table) == pytest.approx(iso * 1.5)
    assert colocated_step_time(iso, "decode", 0.5, 16, 3, 0.3) == pytest.approx(alone * 1.9)  # default table


def test_colocation_slowdown_config_object(table):
    c = ColocationSlowdown(contention=0.1)
    assert c.factor("decode", 0.5, 16, 0) == pytest.approx(table.factor("decode", 0.5, 16))
    assert c.factor("decode", 0.5, 16, 1) == pytest.approx(1.1 * table.factor("decode", 0.5, 16))
    assert c.step_s(0.04, "prefill", 0.5, 2, 1) == pytest.approx(0.04 * 1.1 * table.factor("prefill", 0.5, 2))
    assert c.factor("prefill", 0.5, 1, 0, tokens=512) == pytest.approx(table.factor("prefill", 0.5, 1, tokens=512))
    assert ColocationSlowdown().factor("decode", 1.0, 8, 5) == 1.0  # default contention 0
    assert ColocationSlowdown(table=str(DEFAULT_TABLE)).factor("decode", 0.4, 8, 0) == table.factor("decode", 0.4, 8)
    with pytest.raises(UserError, match="contention"):
        ColocationSlowdown(contention=-0.1)
    with pytest.raises(UserError, match="cannot read"):
        ColocationSlowdown(table="/nonexistent/mps.csv")


@pytest.mark.parametrize("bad", [
    (0.02, "decode", 0.0, 8, 0, 0.0), (0.02, "decode", 1.5, 8, 0, 0.0), (0.02, "decode", 0.5, 0, 0, 0.0),
    (0.02, "decode", 0.5, 8, -1, 0.0), (0.02, "decode", 0.5, 8, 0, -0.1), (-1.0, "decode", 0.5, 8, 0, 0.0),
    (0.02, "decoding", 0.5, 8, 0, 0.0), (0.02, "decode", 0.5, 8, 0.5, 0.0)])
def test_bad_arguments(table, bad):
    with pytest.raises(ValueError):
        colocated_step_time(*bad, table)


def test_bad_table_files(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("model,gpus,phase\nllama-7b,1,decode\n")
    with pytest.raises(UserError, match="missing column"):
        MpsSlowdownTable.load(p)
    p.write_text("model,gpus,phase,sm_share,batch,seq_len,latency_s\nllama-7b,1,decode,1.0,1,32,0.01\n")
    with pytest.raises(UserError, match="llama-13b"):
        MpsSlowdownTable.load(p)
    p.write_text("model,gpus,phase,sm_share,batch,seq_len,latency_s\n"
                 "llama-7b,1,decode,1.0,1,32,0.01\nllama-7b,1,decode,0.5,1,32,0.02\n"
                 "llama-7b,1,prefill,1.0,1,32,0.01\nllama-7b,1,prefill,0.5,1,32,0.03\n")
    t = MpsSlowdownTable.load(p, configs=(("llama-7b", 1),))
    assert t.factor("decode", 0.5, 1) == pytest.approx(2.0) and t.factor("prefill", 0.25, 7) == pytest.approx(3.0)
    assert t.factor("decode", 0.75, 1) == pytest.approx(1.5)
