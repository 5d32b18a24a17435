"""Markdown tables: the one writer of the tables in `report.md` and `comparison.md`, and which generations a table
or figure of many generations shows."""

from __future__ import annotations

import math

import numpy as np

from collapse.stats import aggregate, mean_ci


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (cells as given, no escaping)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ci_cell(mean: float, half: float) -> str:
    """`mean ± half` (4 and 2 significant digits), or the mean alone when there is no interval (nan)."""
    return f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"


def shown_generations(generations: list[int], most: int = 25) -> list[int]:
    """All of `generations` if at most `most`, else the first, the last and log-spaced ones between (collapse
    moves fastest early)."""
    if len(generations) <= most:
        return list(generations)
    index = np.unique(np.round(np.geomspace(1, len(generations), most)).astype(int) - 1)
    return [generations[i] for i in index]


def table(rows: list[dict], names: list[str], reference: list[dict[str, float]] | None = None, most: int = 25) -> str:
    """Markdown table: mean ± 95 % CI across replicates for (at most `most`, see `shown_generations`)
    generations; first the human reference (mean ± 95 % CI over its rows: one per human dataset)."""
    agg = aggregate(rows)
    gens = shown_generations(sorted({row["generation"] for row in rows}), most)
    body = []
    if reference:
        values = {n: [row[n] for row in reference if row.get(n) is not None] for n in names}
        body.append(["human", *(ci_cell(*mean_ci(values[n])) if values[n] else "" for n in names)])
    body += [[str(g), *(ci_cell(*mean_ci(agg[n][g])) if g in agg.get(n, {}) else "" for n in names)] for g in gens]
    return markdown_table(["generation", *names], body)
