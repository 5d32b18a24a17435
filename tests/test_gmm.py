"""The Gaussian-mixture family: the closed-form L2 distance against quadrature, EM against the sampling
error of per-component maximum likelihood (4 standard errors, tests/helpers.py), collapse under replace."""

import jax.numpy as jnp
import numpy as np
import pytest

from collapse.config import Config
from collapse.families import GMMConfig
from collapse.families import analytic, gmm
from tests.helpers import assert_mean


def _density(p: gmm.Params, x_ND: np.ndarray) -> np.ndarray:
    return np.exp(np.asarray(gmm.log_density_NK(jnp.asarray(x_ND, jnp.float32), p), np.float64)).sum(1)


@pytest.mark.parametrize("dim", [1, 2])
def test_l2_distance_matches_quadrature(dim):
    # Trapezoid rule on a grid of step h over [-10, 10]^d for smooth, fast-decaying integrands: error far
    # below the float32 rounding of the closed form (relative 1e-5).
    p = gmm.Params(jnp.array([0.3, 0.7]), jnp.array([[-1.0, 0.5], [2.0, -0.5]])[:, :dim],
                   jnp.stack([jnp.eye(dim) * 0.5, jnp.eye(dim) * 2.0]), jnp.array(1.0))
    q = gmm.truth(GMMConfig(dim=dim))
    h = 0.02 if dim == 1 else 0.05
    axis = np.arange(-10, 10 + h, h)
    grid = np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), -1).reshape(-1, dim)
    numeric = np.sqrt(((_density(p, grid) - _density(q, grid)) ** 2).sum() * h**dim)
    assert float(gmm.l2_distance(p, q)) == pytest.approx(numeric, rel=1e-5)
    assert float(gmm.l2_distance(q, q)) == pytest.approx(0.0, abs=1e-3)  # √ of a float32 cancellation


def test_em_recovers_a_well_separated_mixture():
    # Separation 8: a point lands nearer the wrong mean with probability Φ(-4) = 3e-5, so EM's fit is the
    # per-component MLE: n_k ‖μ̂_k - μ_k‖²/d ~ χ²_d/d (mean 1, variance 2/d, n_k = M ŵ_k) and
    # n_k tr Σ̂_k / (d (n_k - 1)) has mean 1 (variance 2/(d (n_k - 1))); 300 replicates × 2 components.
    model = GMMConfig(samples=1000, separation=8.0, em_steps=30)  # from k-means, EM converges in a few steps
    cfg = Config(model=model, generations=1, replicates=300, compilation_cache="")
    p = analytic.simulate(cfg, snapshots=[0]).params
    true = gmm.truth(model)
    order = np.argsort(p["mean_KD"][0, :, :, 0], axis=1)  # components sorted by the first coordinate
    weight = np.take_along_axis(p["weight_K"][0], order, 1)
    mean = np.take_along_axis(p["mean_KD"][0], order[..., None], 1)
    cov_trace = np.trace(np.take_along_axis(p["cov_KDD"][0], order[..., None, None], 1), axis1=2, axis2=3)
    n_k = model.samples * weight
    d = model.dim
    err = n_k * ((mean - np.asarray(true.mean_KD)) ** 2).sum(-1) / d
    assert_mean(err.ravel(), 1.0, np.sqrt(2 / d), "n_k ‖μ̂_k - μ_k‖²/d")
    var = n_k * (cov_trace - d * model.reg_covar) / (d * (n_k - 1))
    assert_mean(var.ravel(), 1.0, np.sqrt(2 / (d * (n_k.min() - 1))), "n_k tr Σ̂_k/(d (n_k - 1))")
    assert_mean(weight[:, 0], 0.5, np.sqrt(0.25 / model.samples), "ŵ_0")


def test_replace_collapses_the_components():
    # Shumailov et al.'s example, scaled down: after 100 refits of 200 points the per-component variance has
    # shrunk like ((n_k - 1)/n_k)^g ≈ 0.37 (n_k ≈ 100) and the density has drifted from the truth.
    cfg = Config(model=GMMConfig(samples=200), generations=100, replicates=8, compilation_cache="")
    m = analytic.simulate(cfg).metrics
    var_last = np.concatenate([m["var_0"][-1], m["var_1"][-1]])
    assert np.median(var_last) < 0.6 and m["l2_true"][-1].mean() > 3 * m["l2_true"][0].mean()
