"""Capacity brackets and the capacity-ratio interval (experiments/capacity.py), by hand.

Sweep (SLO attainment of the ``ALL`` row; a rate passes at >= 0.99):

    rate        5      10     12.5   15     17.5   20     25     30     32.5   35
    warmserve   1.000  1.000  1.000  1.000  1.000  1.000  1.000  0.995  0.980  0.800
    muxserve    0.700  0.995  1.000  0.999  0.996  0.957  0.900  0.018  -      -

warmserve: largest passing 30, first failing above it 32.5 -> capacity in [30, 32.5).
muxserve: largest passing 17.5, first failing 20, fails below at 5 -> [17.5, 20).
ratio interval [30 / 20, 32.5 / 17.5] = [1.5, 1.857...], largest passing rates alone 30 / 17.5 = 1.714...
"""

import math

import pandas as pd
import pytest

from warmsim.experiments.capacity import Bracket, brackets, interval_text, ratio_interval

WS = {5: 1.0, 10: 1.0, 12.5: 1.0, 15: 1.0, 17.5: 1.0, 20: 1.0, 25: 1.0, 30: 0.995, 32.5: 0.98, 35: 0.8}
MUX = {5: 0.7, 10: 0.995, 12.5: 1.0, 15: 0.999, 17.5: 0.996, 20: 0.957, 25: 0.9, 30: 0.018}


def sweep(**systems) -> pd.DataFrame:
    rows = []
    for s, slo in systems.items():
        for r, v in slo.items():
            rows.append({"system": s, "model": "ALL", "rps": float(r), "slo_attainment": v, "ttft_p99_s": 2.0 - v})
            rows.append({"system": s, "model": "m", "rps": float(r), "slo_attainment": 0.0, "ttft_p99_s": 99.0})
    return pd.DataFrame(rows)


def test_brackets_are_the_largest_passing_and_the_first_failing_rate_above_it():
    b = brackets(sweep(warmserve=WS, muxserve=MUX))
    assert (b["warmserve"].largest_pass, b["warmserve"].first_fail, b["warmserve"].fails_below) == (30.0, 32.5, ())
    assert (b["muxserve"].largest_pass, b["muxserve"].first_fail, b["muxserve"].fails_below) == (17.5, 20.0, (5.0,))
    assert b["warmserve"].text() == "[30, 32.5) req/s"


def test_ratio_interval_is_pass_over_fail_to_fail_over_pass():
    b = brackets(sweep(warmserve=WS, muxserve=MUX))
    lo, hi, point = ratio_interval(b["warmserve"], b["muxserve"])
    assert (lo, hi, point) == (pytest.approx(1.5), pytest.approx(32.5 / 17.5), pytest.approx(30 / 17.5))
    assert interval_text(lo, hi) == "[1.50x, 1.86x]"


def test_the_p99_criterion_reads_the_p99_column():
    # p99 = 2 - slo: passes at <= 1.0 s only where slo >= 1.0
    b = brackets(sweep(warmserve=WS), criterion="p99", p99_limit_s=1.0)
    assert (b["warmserve"].largest_pass, b["warmserve"].first_fail) == (25.0, 30.0)


def test_open_ends():
    top = Bracket(35.0, None, (), (5.0, 35.0))  # passes at the top rate: capacity >= 35
    never = Bracket(0.0, 5.0, (), (5.0, 35.0))  # passes nowhere: capacity < 5
    mid = Bracket(10.0, 15.0, (), (5.0, 35.0))
    assert top.text() == ">= 35 req/s" and never.text() == "< 5 req/s"
    assert ratio_interval(top, mid) == (pytest.approx(35 / 15), math.inf, pytest.approx(3.5))
    lo, hi, point = ratio_interval(mid, never)
    assert (lo, hi) == (pytest.approx(2.0), math.inf) and math.isnan(point)
    assert ratio_interval(mid, top)[:2] == (0.0, pytest.approx(15 / 35))
    assert interval_text(2.0, math.inf) == "[2.00x, inf]"


def test_the_claims_table_shows_the_interval_of_a_rate_sweep(tmp_path):
    """``warmsim report DIR --html`` over ``warmsim run -m experiment=paper_capacity``: the sweep's ALL rows
    (seed means) with each run's alpha give the capacity claim its interval; one run alone does not."""
    import yaml

    from warmsim.experiments.claims import claims_table
    from warmsim.experiments.report_html import rate_sweep
    rows = sweep(warmserve=WS, muxserve=MUX)
    rows = rows[rows.model == "ALL"].reset_index(drop=True)
    rows["run"] = [str(tmp_path / f"r{i}") for i in range(len(rows))]
    for r in rows["run"]:
        (tmp_path / r).mkdir()
        (tmp_path / r / "config.yaml").write_text(yaml.safe_dump({"workload": {"alpha": 0.5}}))
    full = rows.assign(**{"workload.rps": rows["rps"].map(lambda x: f"{x:g}")}).drop(columns=["rps"])
    twice = pd.concat([full, full.assign(slo_attainment=1.0)])  # a second seed: means over seeds
    sw = rate_sweep(full, ["run", "workload.rps"])  # `run -m system=a,b`: the report adds "run"
    assert len(rate_sweep(twice, ["workload.rps"])) == len(sw) == len(WS) + len(MUX)
    one = rows.iloc[:1].assign(ttft_under_fast=0.9)  # a single run's summary beside the sweep
    claim = claims_table(one, sweep=sw).set_index("claim").loc["requests served, WarmServe / MuxServe (up to)"]
    assert claim["warmsim"] == "[1.50x, 1.86x]" and claim["ratio"] == "[0.60, 0.74]"
    assert "warmserve [30, 32.5) req/s, muxserve [17.5, 20) req/s (muxserve also fails at 5)" in claim["how"]
    assert "largest passing rates alone 1.71x; alpha 0.5" in claim["how"]
    assert rate_sweep(full, ["workload.rps", "workload.alpha"]) is None  # not a sweep of the rate alone
    alone = claims_table(one).set_index("claim").loc["requests served, WarmServe / MuxServe (up to)"]
    assert alone["warmsim"] == "-" and "needs a rate sweep" in alone["how"]
