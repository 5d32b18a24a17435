"""The linear-regression family against Gerstgrasser et al. 2024 / Dey & Donoho: test error grows linearly
under replace and stays below (π²/6) σ² d/(T - d - 1) under accumulate. Tolerances from the number of
replicates (tests/helpers.py: 4 standard errors)."""

import jax.numpy as jnp
import numpy as np
import pytest

from collapse.config import Config
from collapse.families import LinRegConfig
from collapse.regimes import AccumulateConfig, ReplaceConfig
from collapse.families import analytic, linreg
from tests.helpers import Z, assert_mean

R, G = 2000, 20
MODEL = LinRegConfig(samples=40, dim=5, noise=0.5)
CHECKED = (0, 4, 19)


@pytest.fixture(scope="module", params=[ReplaceConfig(), AccumulateConfig()], ids=lambda r: r.name)
def run(request):
    cfg = Config(model=MODEL, regime=request.param, generations=G, replicates=R, compilation_cache="")
    x_RND = np.asarray(analytic.human_data(cfg).x_ND, np.float64)
    trace_R = np.trace(np.linalg.inv(np.einsum("rni,rnj->rij", x_RND, x_RND)), axis1=1, axis2=2)
    return request.param, analytic.simulate(cfg).metrics["test_error"], trace_R


def test_test_error_given_the_design(run):
    # Given the design, ŵ_g - w* ~ N(0, σ² s_g (XᵀX)⁻¹) with s_g = g + 1 (replace) or Σ_(i<=g+1) 1/i²
    # (accumulate), so error / (σ² s_g tr (XᵀX)⁻¹) has mean 1 and variance 2 tr(W⁻²)/tr(W⁻¹)² <= 2 exactly;
    # independent over replicates (skewness of one <= 2√2, of the mean of 2000 <= 0.07).
    regime, error_GR, trace_R = run
    s = linreg.error_factor(regime, G)
    for g in CHECKED:
        ratio_R = error_GR[g] / (MODEL.noise * s[g] * trace_R)
        assert_mean(ratio_R, 1.0, np.sqrt(2), f"{regime.name} error_{g}")


def test_expected_test_error_and_the_accumulate_bound(run):
    # Over the design too: E[error_g] = σ² d/(T - d - 1) · s_g (E tr (XᵀX)⁻¹ = d/(T - d - 1)); the spread of
    # tr (XᵀX)⁻¹ has no simple form, so the sample standard deviation sets the bound.
    regime, error_GR, _ = run
    expected = linreg.expected_test_error(MODEL, regime, G)
    unit = MODEL.noise * MODEL.dim / (MODEL.samples - MODEL.dim - 1)
    for g in CHECKED:
        assert_mean(error_GR[g], expected[g], error_GR[g].std(), f"{regime.name} E[error_{g}]")
    if isinstance(regime, ReplaceConfig):
        np.testing.assert_allclose(expected, unit * np.arange(1, G + 1))  # linear in the generation
    else:  # below π²/6 units at every generation, in theory and in simulation (20 one-sided 4-SE checks)
        assert np.all(expected < np.pi**2 / 6 * unit)
        se_G = error_GR.std(1) / np.sqrt(R)
        assert np.all(error_GR.mean(1) - Z * se_G < np.pi**2 / 6 * unit)


def test_ols_fit_and_metric():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(30, 3)), jnp.float32)
    w = jnp.array([1.0, -2.0, 0.5])
    data = linreg.Data(x, x @ w)
    p = linreg.fit(MODEL, linreg.stats(MODEL, data, jnp.ones(30)), None)
    np.testing.assert_allclose(p.w_D, w, rtol=1e-4)
    assert float(linreg.metrics(MODEL, w + 1, p)["test_error"]) == pytest.approx(3.0, rel=1e-4)


@pytest.mark.parametrize("h, k", [(0.5, 1.0), (1 / 11, 0.1)])
def test_the_weighted_fresh_mix_is_least_at_the_golden_weight(h, k):
    """He et al. 2025 (their linear-regression setting, fresh human data each generation, rows weighted w and
    1 - w): the stationary test error, averaged over generations 15-29 of 150 replicates on the same seed (common
    random numbers, so weights are compared pairwise), is less at w* = (√(k² + 4k) - k)/2 than one grid step
    (0.1) either side of it, each by more than four standard errors of the paired difference; at k = 1 it
    agrees with the leading-order closed form within four standard errors (its relative error is of order
    d/n: here n = 1000, d = 2, about 0.6 %, below the standard error of about 1.3 %)."""
    from collapse.regimes import MixConfig
    from collapse.regimes.mix import golden_weight

    model = LinRegConfig(samples=1000, dim=2)
    w_star = golden_weight(k)

    def errors_R(w: str):
        regime = MixConfig(human_fraction=h, fresh=True, human_weight=w)
        cfg = Config(model=model, regime=regime, generations=30, replicates=150, compilation_cache="")
        return np.asarray(analytic.simulate(cfg).metrics["test_error"], np.float64)[15:].mean(0)

    best = errors_R("golden")
    for w in (w_star - 0.1, w_star + 0.1):
        diff_R = errors_R(f"{w:.6f}") - best
        assert diff_R.mean() > Z * diff_R.std(ddof=1) / np.sqrt(len(diff_R)), f"w = {w:.3f} vs w* = {w_star:.3f}"
    if k == 1:
        regime = MixConfig(human_fraction=h, fresh=True, human_weight="golden")
        assert_mean(best, linreg.stationary_fresh_mix(model, regime), best.std(ddof=1), "stationary test error at w*")
