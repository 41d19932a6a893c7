"""The "Paper claims" table shows each claim's range from `warmsim sensitivity`, only where the run is
the configuration the ranges were computed for."""

from pathlib import Path

import pandas as pd

from warmsim.experiments.claims import CLAIMS, range_cells, shipped_ranges
from warmsim.experiments.sensitivity import KNOBS

ROOT = Path(__file__).resolve().parents[2]
TAIL = next(c for c in CLAIMS if c.name.startswith("tail TTFT"))
CAPACITY = next(c for c in CLAIMS if c.name.startswith("requests served"))


def _ranges(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["claim", "unit", "tag", "paper", "default", "low", "high",
                                       "paper_inside", "moved_most_by"])


def test_the_shipped_ranges_are_the_committed_sensitivity_output():
    shipped = shipped_ranges()
    pd.testing.assert_frame_equal(shipped, pd.read_csv(ROOT / "figures/out/sensitivity/claims_ranges.csv"))


def test_every_shipped_range_holds_its_default_and_names_a_knob_of_the_command():
    r = shipped_ranges()
    names = {k.name for k in KNOBS} | {"-"}
    assert (r.low <= r.default).all() and (r.default <= r.high).all()
    assert set(r.moved_most_by) <= names
    inside = (r.low <= r.paper) & (r.paper <= r.high)
    assert (inside == r.paper_inside).all()


def test_a_run_at_the_defaults_gets_the_range_paper_inside_and_knob():
    r = _ranges((TAIL.name, "x", "[P]", 50.8, 268.0, 135.0, 376.0, False, "process"))
    assert range_cells(TAIL, 268.0, None, r) == ("135.00x .. 376.00x", "no", "process")


def test_a_run_elsewhere_is_told_to_run_the_sensitivity_command():
    r = _ranges((TAIL.name, "x", "[P]", 50.8, 268.0, 135.0, 376.0, False, "process"))
    span, inside, knob = range_cells(TAIL, 100.0, None, r)
    assert "warmsim sensitivity" in span and inside == knob == "-"


def test_an_interval_claim_shows_both_ends():
    r = _ranges((CAPACITY.name + ", low end", "x", "[P]", 2.5, 1.38, 0.79, 3.6, True, "alpha"),
                (CAPACITY.name + ", high end", "x", "[P]", 2.5, 1.71, 0.92, float("inf"), True, "mux_plan"))
    span, inside, knob = range_cells(CAPACITY, 1.5, (1.38, 1.71), r)
    assert span == "low end: 0.79x .. 3.60x; high end: 0.92x .. inf"
    assert inside == "yes (low end), yes (high end)" and knob == "alpha (low end), mux_plan (high end)"


def test_a_claim_the_run_cannot_measure_has_no_range():
    r = _ranges((TAIL.name, "x", "[P]", 50.8, 268.0, 135.0, 376.0, False, "process"))
    assert range_cells(TAIL, None, None, r) == ("-", "-", "-")
