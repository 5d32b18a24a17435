"""Markdown tables: the one writer of the tables in `report.md` and `comparison.md`."""

from __future__ import annotations

import math


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (cells as given, no escaping)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ci_cell(mean: float, half: float) -> str:
    """`mean ± half` (4 and 2 significant digits), or the mean alone when there is no interval (nan)."""
    return f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"
