"""The Gaussian ecosystem against its exact moments: every lab's mean, variance, error and the labs' disagreement,
simulated over many replicates, agree with the closed-form recursion within Z standard errors."""

import jax
import numpy as np
import pytest

from collapse.families import gaussian_ecosystem as eco
from tests.helpers import assert_mean

W = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])  # a ring: (I + P) / 2, |λ₂| = |1 + e^(2πi/3)| / 2 = 1/2
N_REAL, N_SHARED, M, T, R = 8, 3, 24, 6, 4000


@pytest.fixture(scope="module")
def run():
    C = eco.counts(W, M)
    mu, var = eco.simulate(jax.random.key(0), C, N_REAL, N_SHARED, T, R, mu_star=1.0, sigma_star=2.0)
    return C, mu, var, eco.moments(C, N_REAL, N_SHARED, T, mu_star=1.0, sigma_star=2.0)


def test_counts_follow_w():
    assert eco.counts(W, M).tolist() == [[12, 12, 0], [0, 12, 12], [12, 0, 12]]
    assert eco.counts(np.eye(2), 5).tolist() == [[5, 0], [0, 5]]
    with pytest.raises(ValueError):
        eco.counts([[0.5, 0.4], [0, 1]], 5)


def test_round_zero_is_the_truth_fit(run):
    _, _, _, th = run
    np.testing.assert_allclose(th.var_TK[0], 4.0)
    np.testing.assert_allclose(th.mean_TK[0], 1.0)
    # shared points correlate the labs' first fits: Cov = n_s σ*² / n²
    np.testing.assert_allclose(th.second_TKK[0] - 1.0, (N_SHARED * 4 + np.eye(3) * (N_REAL - N_SHARED) * 4) / N_REAL**2)


@pytest.mark.parametrize("t", [1, T - 1])
def test_simulation_agrees_with_the_moments(run, t):
    """Per lab: E μ, E σ², E (μ − μ*)², and per pair E (μ_k − μ_l)²; 4 standard errors of R replicates (the sample
    sd of each quantity), 21 checks per round."""
    _, mu, var, th = run
    for k in range(3):
        assert_mean(mu[t, :, k], th.mean_TK[t, k], mu[t, :, k].std(), f"E mu round {t} lab {k}")
        assert_mean(var[t, :, k], th.var_TK[t, k], var[t, :, k].std(), f"E var round {t} lab {k}")
        err = (mu[t, :, k] - 1.0) ** 2
        assert_mean(err, th.error_TK(1.0)[t, k], err.std(), f"E error round {t} lab {k}")
        for j in range(k + 1, 3):
            d = (mu[t, :, k] - mu[t, :, j]) ** 2
            assert_mean(d, th.disagreement_TKK()[t, k, j], d.std(), f"disagreement round {t} labs {k},{j}")


def test_isolated_labs_stay_uncorrelated():
    """W = I and no shared real points: K independent lineages, so E μ_k μ_l = μ*² for k ≠ l in every round,
    and each lab's moments are those of a one-lab ecosystem."""
    th = eco.moments(eco.counts(np.eye(3), 16), 8, 0, 10, mu_star=0.5)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(th.second_TKK[:, off], 0.25, rtol=1e-12)
    one = eco.moments(eco.counts(np.eye(1), 16), 8, 0, 10, mu_star=0.5)
    np.testing.assert_allclose(th.var_TK, np.repeat(one.var_TK, 3, axis=1), rtol=1e-12)


def test_consensus_rate():
    assert eco.consensus_rate(W, N_REAL, M) == pytest.approx(M / (N_REAL + M) / 2)
    assert eco.consensus_rate(np.full((4, 4), 0.25), 10, 30) == pytest.approx(0.0, abs=1e-12)  # one step to consensus
    assert eco.consensus_rate(np.eye(3), 10, 30) == pytest.approx(0.75)  # isolated labs never agree more
