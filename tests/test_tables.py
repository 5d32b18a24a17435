"""Markdown tables of report.md and comparison.md."""

from collapse.tables import ci_cell, markdown_table


def test_markdown_table():
    assert markdown_table(["generation", "a", "b"], [["0", "1", ""], ["1", "", "x"]]).splitlines() == [
        "| generation | a | b |", "|---|---|---|", "| 0 | 1 |  |", "| 1 |  | x |"]
    assert markdown_table(["g"], []) == "| g |\n|---|"


def test_ci_cell():
    assert ci_cell(0.123456, 0.0123456) == "0.1235 ± 0.012"
    assert ci_cell(27.05, float("nan")) == "27.05"
