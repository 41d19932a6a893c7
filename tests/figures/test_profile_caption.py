"""A figure's caption says how the cost profile behind it was measured, from the results table."""

import pandas as pd

from warmsim.figures.style import profile_text


def test_an_analytic_profile_is_said_to_be_not_measured():
    rows = pd.DataFrame({"profile": ["h100_eager_analytic"], "profile_measured": [False]})
    assert profile_text(rows) == "Cost profile h100_eager_analytic (analytic, not measured)"


def test_the_reference_profile_names_its_external_measurement():
    rows = pd.DataFrame({"profile": ["h100_reference", "h100_reference"], "profile_measured": [True, True]})
    text = profile_text(rows)
    assert text.startswith("Cost profile h100_reference (measured by an external script")
    assert "not measured" not in text


def test_a_table_without_the_column_says_unknown():
    assert profile_text(pd.DataFrame({"system": ["static"]})) == "Cost profile unknown"
