"""Across-replicate statistics: metric rows grouped by metric and generation, and the mean with its 95 %
Student-t interval. The one home of these numbers for the report, its figures, `collapse-report` and the
experiment scripts, so every table and band of a study uses the same interval."""

from __future__ import annotations

import functools
import math
from collections import defaultdict

import numpy as np


@functools.cache
def t975(df: int) -> float:
    """Two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    from scipy.stats import t  # imported on first use: scipy.stats takes a noticeable time to load

    return float(t.ppf(0.975, df))


def mean_ci(values, axis: int | None = None):
    """Mean and half-width of its 95 % t-interval, over all of `values` (floats) or along `axis` (arrays);
    the half-width is nan with fewer than two values."""
    x = np.asarray(values, np.float64)
    n = x.size if axis is None else x.shape[axis]
    mean = x.mean(axis)
    if n < 2:
        half = np.full_like(mean, np.nan)
    else:
        half = t975(n - 1) * x.std(axis, ddof=1) / math.sqrt(n)
    return (float(mean), float(half)) if axis is None else (mean, half)


def aggregate(rows: list[dict]) -> dict[str, dict[int, list[float]]]:
    """{metric: {generation: [value per replicate]}} of metric rows; undefined values (null) are left out."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["value"] is not None:
            out[row["metric"]][row["generation"]].append(row["value"])
    return out
