"""The Gaussian family against closed-form theory (the χ² law of the MLE variance; Shumailov et al. 2024, Thm 3.1
for the unbiased estimator; Alemohammad et al. 2023; Kazdan et al. 2024), with tolerances from the number of
replicates (see tests/helpers.py: 4 standard errors); He et al. 2025's weighted fresh mix and golden weight."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import digamma, polygamma

from collapse.config import Config
from collapse.families import GaussianConfig
from collapse.regimes import AccumulateConfig, MixConfig, ReplaceConfig
from collapse.regimes.mix import golden_weight
from collapse.families import analytic, gaussian
from tests.helpers import assert_mean

R, G, M = 4000, 60, 100
CHECKED = (0, 19, 59)


def simulate(model, regime=ReplaceConfig(), replicates=R, generations=G):
    cfg = Config(model=model, regime=regime, generations=generations, replicates=replicates, compilation_cache="")
    return analytic.simulate(cfg).metrics


def test_mle_variance_decays_geometrically():
    # σ²_g/σ²_0 is a product of g + 1 independent χ²_(M-1)/M factors: mean c^(g+1), c = (M-1)/M, and second
    # moment ((M-1)(M+1)/M²)^(g+1), so the standard deviation is exact. Its log has variance (g+1) ψ'((M-1)/2)
    # ≤ 1.22 here: like a lognormal, skewness ≤ 8.1, so the mean of 4000 has skewness ≤ 0.13 (near normal).
    var = simulate(GaussianConfig(samples=M))["var_ratio"]
    c = (M - 1) / M
    for g in CHECKED:
        second = ((M - 1) * (M + 1) / M**2) ** (g + 1)
        assert_mean(var[g], c ** (g + 1), np.sqrt(second - c ** (2 * (g + 1))), f"E[σ²_{g}]")
    np.testing.assert_allclose(gaussian.expected_var_ratio(GaussianConfig(samples=M), ReplaceConfig(), G),
                               c ** np.arange(1, G + 1))


def test_unbiased_variance_keeps_its_mean_while_its_log_drifts_to_minus_infinity():
    # Each refit multiplies σ² by χ²_(M-1)/(M-1): mean 1 (a martingale), second moment (M+1)/(M-1). Its log
    # has mean ψ((M-1)/2) + log(2/(M-1)) < 0 and variance ψ'((M-1)/2) per step, so log σ²_g → -∞ almost
    # surely (law of large numbers) although E[σ²_g] = σ²_0: both moments are exact. The log is a sum of
    # independent terms (near normal); σ²_g itself is checked only up to g = 9, where the mean of 4000 values
    # has skewness ≤ 0.11 (log-variance ≤ 1.1, as above).
    M_small = 20  # a faster drift: -0.054 per generation
    var = simulate(GaussianConfig(samples=M_small, estimator="unbiased"))["var_ratio"]
    log_var = np.log(var)
    k = (M_small - 1) / 2
    expected_log = gaussian.expected_log_det_ratio(GaussianConfig(samples=M_small, estimator="unbiased"), G)
    for g in (0, 9, 19, 59):
        second = ((M_small + 1) / (M_small - 1)) ** (g + 1)
        if g <= 9:
            assert_mean(var[g], 1.0, np.sqrt(second - 1), f"E[σ²_{g}] (unbiased)")
        assert expected_log[g] == pytest.approx((g + 1) * (digamma(k) + np.log(1 / k)))
        assert_mean(log_var[g], expected_log[g], np.sqrt((g + 1) * polygamma(1, k)), f"E[log σ²_{g}]")
    assert expected_log[-1] < -3  # a typical σ²_59 is e^-3.2 ≈ 4 % of σ²_0


def test_bias_lambda_and_dimension_scale_trace_and_mean_drift():
    # d = 3, λ = 0.9: E[tr Σ_g]/tr Σ_0 = λ^g c^(g+1) and E‖μ_g - μ_0‖² = (d/M)(1 + λ Σ_(j<g) E[σ²_j]);
    # no closed-form variance, so the bound uses the sample standard deviation (2000 replicates).
    model = GaussianConfig(samples=M, dim=3, bias=0.9)
    out = simulate(model, replicates=2000, generations=30)
    var, mean_sq = out["var_ratio"], out["mean_sq_dist"]
    exp_var = gaussian.expected_var_ratio(model, ReplaceConfig(), 30)
    exp_mean = gaussian.expected_mean_sq_dist(model, 30)
    for g in (0, 9, 29):
        assert_mean(var[g], exp_var[g], var[g].std(), f"E[tr Σ_{g}] (λ = 0.9)")
        assert_mean(mean_sq[g], exp_mean[g], mean_sq[g].std(), f"E‖μ_{g} - μ_0‖²")
    assert exp_var[29] == pytest.approx(0.9**29 * 0.99**30)


def test_accumulate_keeps_the_variance_bounded_away_from_zero():
    # Exact: E[σ²_g] = c Π_(k=2)^(g+1) (1 - 1/(M k²)) (module docstring) → sin(π/√M)/(π/√M); the ratio is
    # bounded, its sample standard deviation sets the tolerance.
    M_small = 10
    model = GaussianConfig(samples=M_small)
    var = simulate(model, AccumulateConfig(), replicates=2000)["var_ratio"]
    expected = gaussian.expected_var_ratio(model, AccumulateConfig(), G)
    k = np.arange(2, G + 2)
    np.testing.assert_allclose(expected, 0.9 * np.cumprod(np.concatenate([[1], 1 - 1 / (M_small * k[:-1] ** 2)])))
    limit = np.sin(np.pi / np.sqrt(M_small)) / (np.pi / np.sqrt(M_small))
    assert np.all(expected > limit) and expected[-1] == pytest.approx(limit, rel=0.01)
    for g in CHECKED:
        assert_mean(var[g], expected[g], var[g].std(), f"E[σ²_{g}] (accumulate)")


def test_pairwise_statistics_equal_those_of_the_union():
    # float32 centring error: a few ulps of |mean|/std = 500 → relative 1e-7 · 500 · 20
    x = jax.random.normal(jax.random.key(0), (50, 2)) * 1e-2 + 5.0
    cfg = GaussianConfig(dim=2)
    a, b = gaussian.stats(cfg, x[:20], jnp.ones(20)), gaussian.stats(cfg, x[20:], jnp.ones(30))
    whole = gaussian.stats(cfg, x, jnp.ones(50))
    for got, want in zip(gaussian.combine(a, b), whole):
        np.testing.assert_allclose(got, want, rtol=20 * np.finfo(np.float32).eps * 500)


def test_metrics_match_their_definitions():
    cfg = GaussianConfig(dim=2, std=2.0)
    p = gaussian.Params(jnp.array([1.0, -1.0]), jnp.diag(jnp.array([1.0, 9.0])), jnp.array(10.0))
    out = {k: float(v) for k, v in gaussian.metrics(cfg, gaussian.truth(cfg), p).items()}
    # W2² = ‖μ‖² + Σ_i (√λ_i - s)² for a diagonal Σ and Σ_0 = s² I
    assert out == pytest.approx({"mean_sq_dist": 2.0, "var_ratio": 10 / 8, "det_ratio": 9 / 16,
                                 "w2_true": np.sqrt(2 + 1 + 1)}, rel=1e-6)


@pytest.mark.parametrize("weight", ["", "golden", "0.3"])
def test_a_weighted_fresh_mix_follows_its_moment_recursion(weight):
    """mix with fresh truth draws each generation, the human rows weighted w (He et al. 2025) or by their count:
    the mean's squared error and the variance against the exact recursion (gaussian.expected_fresh_mix) within
    four standard errors of 4000 replicates, at generations 1, 10 and 39 (stationary by then)."""
    model = GaussianConfig(samples=100, estimator="unbiased")
    regime = MixConfig(human_fraction=0.5, fresh=True, human_weight=weight)
    out = simulate(model, regime, generations=40)
    expected = gaussian.expected_fresh_mix(model, regime, 40)
    for name in ("mean_sq_dist", "var_ratio"):
        for g in (1, 10, 39):
            assert_mean(out[name][g], expected[name][g], out[name][g].std(), f"E[{name}_{g}] (w = {weight or 'n_h/n'})")


@pytest.mark.parametrize("h, k", [(0.5, 1.0), (1 / 11, 0.1)])
def test_the_stationary_error_is_least_at_the_golden_weight(h, k):
    """The exact stationary E‖μ‖² over a grid of w (step 0.01) is least within one step of w* = (√(k² + 4k) −
    k)/2 (1/φ at k = 1), and the golden weight beats the proportional one, k/(1 + k)."""
    model = GaussianConfig(samples=200 if k == 1 else 2200, estimator="unbiased")
    n_h, n_s = MixConfig(human_fraction=h).counts(model.samples)
    assert n_h / n_s == pytest.approx(k)
    error = lambda w: gaussian.stationary_fresh_mix(  # noqa: E731
        model, MixConfig(human_fraction=h, fresh=True, human_weight=w))["mean_sq_dist"]
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    best = grid[np.argmin([error(str(w)) for w in grid])]
    assert abs(best - golden_weight(k)) <= 0.01
    assert error("golden") < error(str(k / (1 + k)))
    assert golden_weight(1.0) == pytest.approx((np.sqrt(5) - 1) / 2)


@pytest.mark.parametrize("regime, model, match", [
    (MixConfig(human_fraction=0.5, human_weight="1.5"), GaussianConfig(), "golden or a weight in"),
    (MixConfig(human_fraction=0.0, human_weight="golden"), GaussianConfig(), "0 < regime.human_fraction < 1"),
])
def test_a_human_weight_that_cannot_apply_is_refused(regime, model, match):
    from collapse.errors import ConfigError
    from collapse.validate import validate

    with pytest.raises(ConfigError, match=match) as e:
        validate(Config(model=model, regime=regime, compilation_cache=""))
    assert e.value.key == "regime.human_weight"


def test_a_human_weight_with_no_human_row_is_refused_before_any_training(tmp_path):
    """0.001 of 64 rows rounds to 0 human rows: nothing to weigh, refused when the study opens its data."""
    from collapse.errors import ConfigError
    from collapse.run import study
    from collapse.store import RunDir
    from tests.helpers import tiny_config

    cfg = tiny_config(regime=MixConfig(human_fraction=0.001, human_weight="golden"))
    with pytest.raises(ConfigError, match="weights 0 human against 64 synthetic rows") as e:
        study.open_study(cfg, RunDir(tmp_path / "run"))
    assert e.value.key == "regime.human_weight" and not (tmp_path / "run").exists()
