"""Across-replicate statistics: the t-interval of every table and band, metric rows grouped."""

import math

import numpy as np
import pytest

from collapse.stats import aggregate, mean_ci, t975

# The hand-made table the report used before scipy: two-sided 95 % Student-t quantiles by degrees of freedom.
TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


@pytest.mark.parametrize("df", sorted(TABLE))
def test_t_quantile_rounds_to_the_old_table(df):
    # the relative change (at most 1.5e-4, df = 60) moves a 2-significant-digit half-width only at a rounding edge
    assert round(t975(df), 3) == TABLE[df]


def test_t_quantile_tends_to_the_normal_one():
    assert t975(10**6) == pytest.approx(1.959964, abs=1e-5)
    assert all(t975(df) > t975(df + 1) for df in range(1, 200))


def test_mean_ci_is_the_t_interval():
    mean, half = mean_ci([0.3, 0.5])  # df = 1: t = 12.7062, s / √n = 0.1
    assert mean == pytest.approx(0.4) and half == pytest.approx(12.7062047 * 0.1)
    assert f"{half:.2g}" == "1.3"  # with the tables' t(1) = 12.706
    mean, half = mean_ci([2.0])
    assert mean == 2.0 and math.isnan(half)


def test_mean_ci_along_an_axis_equals_it_per_row():
    x_GR = np.random.default_rng(0).normal(size=(4, 7))
    mean_G, half_G = mean_ci(x_GR, axis=1)
    for g in range(4):
        assert (mean_G[g], half_G[g]) == mean_ci(list(x_GR[g]))
    assert np.isnan(mean_ci(x_GR[:, :1], axis=1)[1]).all()


def test_aggregate_groups_by_metric_and_generation_without_undefined_values():
    rows = [{"generation": g, "replicate": r, "metric": m, "value": None if (g, r) == (1, 0) else g + r / 10}
            for m in ("a", "b") for g in range(2) for r in range(3)]
    agg = aggregate(rows)
    assert sorted(agg) == ["a", "b"]
    assert agg["a"][0] == [0.0, 0.1, 0.2] and agg["a"][1] == [1.1, 1.2]


def test_moments_pool_exactly_and_give_the_same_interval():
    from collapse.stats import Moments

    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, 7), rng.normal(-1.0, 0.5, 4)
    pooled = Moments.of(a) + Moments.of(b)
    whole = Moments.of(np.concatenate([a, b]))
    assert pooled.n == 11 and pooled.mean == pytest.approx(whole.mean, rel=1e-14)
    assert pooled.m2 == pytest.approx(whole.m2, rel=1e-13)
    assert mean_ci(pooled) == pytest.approx(mean_ci(np.concatenate([a, b])), rel=1e-13)
    assert Moments.from_sd(whole.n, whole.mean, whole.sd).m2 == pytest.approx(whole.m2, rel=1e-14)
    assert Moments.of([]) + Moments.of(a) == Moments.of(a) and np.isnan(mean_ci(Moments.of([2.0]))[1])
