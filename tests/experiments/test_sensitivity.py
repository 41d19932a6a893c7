"""warmsim sensitivity: the plan of runs, the range arithmetic, the tornado's bars, and one small run."""

from __future__ import annotations

import pandas as pd
import pytest

from warmsim.experiments import sensitivity as sens
from warmsim.figures.fig_sensitivity import bars
from warmsim.sim.errors import UserError


def test_every_knob_says_why_and_starts_at_its_default():
    for k in sens.KNOBS:
        assert k.why and k.what
        assert k.values[0][1] == ()  # the default value needs no override
        assert len(k.values) >= 2 and set(k.experiments) <= set(sens.EXPERIMENTS)


def test_the_plan_runs_each_non_default_value_once_per_experiment(tmp_path):
    p = sens.plan(tmp_path, quick=True, knobs=("alpha", "mux_plan", "sllm_pool"), experiments=("headline", "ablation"))
    names = [j.name for j in p.jobs]
    # headline: default + alpha=2 + two mux plans + empty pool; ablation: default + alpha=2 (the other two
    # knobs cannot move an ablation claim and are not run there)
    assert names == ["headline/default__default", "headline/sllm_pool__empty", "headline/mux_plan__run_rate",
                     "headline/mux_plan__30_req_s", "headline/alpha__2", "ablation/default__default",
                     "ablation/alpha__2"]
    alpha = next(j for j in p.jobs if j.name == "ablation/alpha__2")
    assert alpha.overrides == ["experiment=paper_ablation", "workload.duration_s=600", "seed=0", "progress=false",
                               "workload.alpha=2"]


def test_the_weight_source_knob_reaches_every_warmserve_system_that_has_the_setting(tmp_path):
    p = sens.plan(tmp_path, quick=True, knobs=("warmserve_source",), experiments=("ablation",))
    pinned = next(j for j in p.jobs if j.name.endswith("pinned")).overrides
    assert "overrides.warmserve.activator.miss_source=host_pinned" in pinned
    assert "overrides.warmserve.placer.source=host_pinned" in pinned
    # --disable-prewarm has no placer: only its misses change source
    assert "overrides.warmserve_disable_prewarm.activator.miss_source=host_pinned" in pinned
    assert not any(o.startswith("overrides.warmserve_disable_prewarm.placer") for o in pinned)


def test_capacity_runs_a_rate_grid_per_value(tmp_path):
    p = sens.plan(tmp_path, quick=True, knobs=("alpha",), experiments=("capacity",))
    rates = sens.CAPACITY_RATES["quick"]
    assert len(p.jobs) == 2 * len(rates)
    assert all(max(b - a for a, b in zip(r, r[1:])) <= 2.5 for r in [sens.CAPACITY_RATES["full"]])


def test_unknown_knob_or_experiment_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown knob"):
        sens.plan(tmp_path, quick=True, knobs=("colour",))
    with pytest.raises(UserError, match="unknown experiment"):
        sens.plan(tmp_path, quick=True, experiments=("nope",))


def _rows(values: dict) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": "headline", "claim": "c", "unit": "x", "paper": 50.0, "tag": "[P]",
                          "knob": k, "value": v, "warmsim": x} for (k, v), x in values.items()])


def test_ranges_by_hand():
    rows = _rows({("default", "default"): 20.0, ("a", "lo"): 15.0, ("a", "hi"): 30.0, ("b", "x"): 60.0})
    r = sens.ranges(rows).iloc[0]
    assert (r.default, r.low, r.high) == (20.0, 15.0, 60.0)
    assert r.paper_inside  # 50 in [15, 60]
    assert r.moved_most_by == "b"  # spread 40 (20..60) against a's 15 (15..30)
    assert r.knobs_run == 2


def test_tornado_bars_include_the_default_and_go_widest_first():
    rows = _rows({("default", "default"): 20.0, ("a", "lo"): 15.0, ("a", "hi"): 30.0, ("b", "x"): 22.0})
    default, bs = bars(rows)
    assert default == 20.0
    assert bs == [("a", 15.0, 30.0, "lo", "hi"), ("b", 20.0, 22.0, "default", "x")]


@pytest.mark.slow
def test_a_small_study_end_to_end(tmp_path):
    """One knob, the headline experiment, 60 s of trace: the CSV, the table and a tornado per claim."""
    rc = sens.main(["--knobs", "sllm_pool", "--experiments", "headline", "--duration", "60", "--out",
                    str(tmp_path), "--jobs", "2"])
    assert rc == 0
    rows = pd.read_csv(tmp_path / "sensitivity.csv")
    tail = rows[rows.claim.str.startswith("tail TTFT")]
    assert set(tail.knob) == {"default", "sllm_pool"}
    # an empty pool at t=0 can only slow ServerlessLLM's first starts
    assert tail.set_index("knob").warmsim["sllm_pool"] >= tail.set_index("knob").warmsim["default"]
    assert (tmp_path / "claims.md").read_text().count("| tail TTFT") == 1
    assert list(tmp_path.glob("tornado_tail_ttft*.png"))
