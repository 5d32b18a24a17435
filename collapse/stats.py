"""Across-replicate statistics: metric rows grouped by metric and generation, and the mean with its 95 %
Student-t interval. The one home of these numbers for the report, its figures, `collapse-report` and the
experiment scripts, so every table and band of a study uses the same interval."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import defaultdict

import numpy as np


@functools.cache
def t975(df: int) -> float:
    """Two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    from scipy.special import stdtrit  # not scipy.stats, whose import takes seconds in every process

    return float(stdtrit(df, 0.975))


@dataclasses.dataclass(frozen=True)
class Moments:
    """A sample kept as its size, mean and sum of squared deviations: all a mean and its t-interval need, and
    two of them pool exactly (Chan et al.'s update), so a summary of many replicates can store one row per
    cell instead of every value (`collapse.summary`, aggregated form)."""

    n: int
    mean: float
    m2: float  # Σ (x - mean)²

    @classmethod
    def of(cls, values) -> Moments:
        x = np.asarray(values, np.float64)
        if not x.size:
            return cls(0, math.nan, 0.0)
        return cls(x.size, float(x.mean()), float(((x - x.mean()) ** 2).sum()))

    @classmethod
    def from_sd(cls, n: int, mean: float, sd: float) -> Moments:
        return cls(n, mean, sd * sd * (n - 1) if n > 1 else 0.0)

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    def __len__(self) -> int:
        return self.n

    def __add__(self, other: Moments) -> Moments:
        n = self.n + other.n
        if not self.n or not other.n:
            return self if other.n == 0 else other
        delta = other.mean - self.mean
        return Moments(n, self.mean + delta * other.n / n, self.m2 + other.m2 + delta * delta * self.n * other.n / n)


def mean_ci(values, axis: int | None = None):
    """Mean and half-width of its 95 % t-interval, over all of `values` (floats, or one `Moments`) or along
    `axis` (arrays); the half-width is nan with fewer than two values."""
    if isinstance(values, Moments):
        half = t975(values.n - 1) * values.sd / math.sqrt(values.n) if values.n > 1 else math.nan
        return values.mean, half
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


def difference_ci(a, b) -> tuple[float, float]:
    """mean(a) - mean(b) of two independent samples and the half-width of its 95 % Welch interval (Student t
    with the Welch–Satterthwaite degrees of freedom); nan with fewer than two values on either side."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return diff, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return diff, 0.0
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return diff, t975(max(1, int(df))) * math.sqrt(va + vb)


# ----------------------------------------------------------------------- rank tests (collapse.membership)


@dataclasses.dataclass(frozen=True)
class RankTest:
    """A one-sided rank test's outcome: its n, statistic, the statistic standardised under the null, and
    log10 of the p-value (kept as a log, since the evidence of a membership test runs far below 1e-300)."""

    n: int
    statistic: float
    z: float
    log10_p: float


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy.stats.rankdata's, without its import time)."""
    sorter = np.argsort(x, kind="stable")
    first = np.r_[True, x[sorter][1:] != x[sorter][:-1]]
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, x.size])
    ranks = np.empty(x.size)
    ranks[sorter] = (starts + (counts + 1) / 2)[np.cumsum(first) - 1]
    return ranks


def rank_sum(x, y) -> RankTest:
    """Mann–Whitney: do the values `x` rank above the values `y`? U = the pairs (x_i, y_j) with x_i > y_j (ties
    half), and p = P(U' >= U) under exchangeability of x and y, by the normal approximation with the tie
    correction and no continuity correction (scipy.stats.mannwhitneyu's `asymptotic` p, one-sided)."""
    from scipy.special import log_ndtr

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n1, n2 = x.size, y.size
    n = n1 + n2
    ranks = _ranks(np.concatenate([x, y]))
    U = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    _, t = np.unique(ranks, return_counts=True)
    var = n1 * n2 / 12 * ((n + 1) - float((t**3 - t).sum()) / (n * (n - 1)))
    z = (U - n1 * n2 / 2) / math.sqrt(var) if var > 0 else 0.0
    return RankTest(n, U, z, float(log_ndtr(-z)) / math.log(10))


def rank_correlation(x, y) -> RankTest:
    """Spearman: do `x` rise with `y`? rho = Pearson's correlation of their ranks (ties averaged), and
    p = P(rho' >= rho) under independence, by Student's t with n - 2 degrees of freedom of
    t = rho √((n - 2) / (1 - rho²)) (scipy.stats.spearmanr's p, one-sided)."""
    from scipy.special import stdtr

    rx, ry = _ranks(np.asarray(x, np.float64)), _ranks(np.asarray(y, np.float64))
    n = rx.size
    rho = float(np.corrcoef(rx, ry)[0, 1]) if rx.std() > 0 and ry.std() > 0 else 0.0
    t = rho * math.sqrt((n - 2) / max(1.0 - rho * rho, 1e-300))
    return RankTest(n, rho, t, math.log10(max(float(stdtr(n - 2, -t)), 1e-300)))
