"""The Gaussian-mixture family: K full-covariance components fitted by EM, refitted every generation.
A `collapse.families.protocols.AnalyticFamily`: a module of pure functions of one replicate.

Truth: equal weights, identity covariances, means `separation` apart along the first axis (Shumailov et
al. 2024's two-component example by default: 1000 samples a generation). EM runs `em_steps` iterations;
generation 0 starts from k-means (k-means++ seeding from the INIT key, as scikit-learn), every later
generation from the previous fit (warm start: components keep their identity). `reg_covar` is added to
every covariance's diagonal. The fit needs the points (no sufficient statistics), so regime=accumulate
keeps a buffer of them.

Metrics: `l2_true`, the L2 distance between the fitted and true mixture densities in closed form
(∫ N(x; a, A) N(x; b, B) dx = N(a; b, A + B)), and per component k (sorted by the first mean coordinate,
as the true means are): `mean_k` (first coordinate), `var_k` (tr Σ_k / d) and `weight_k`.

Shape suffixes: the package's (collapse/__init__.py), and K, L the components of two mixtures.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse.families import GMMConfig
from collapse.regimes import RegimeConfig


class Params(NamedTuple):
    weight_K: jax.Array
    mean_KD: jax.Array
    cov_KDD: jax.Array
    n: jax.Array


def truth(cfg: GMMConfig) -> Params:
    K, d = cfg.components, cfg.dim
    mean_KD = np.zeros((K, d), np.float32)
    mean_KD[:, 0] = (np.arange(K) - (K - 1) / 2) * cfg.separation
    return Params(jnp.full(K, 1 / K), jnp.asarray(mean_KD), jnp.broadcast_to(jnp.eye(d), (K, d, d)),
                  jnp.asarray(np.inf, jnp.float32))


def draw(p: Params, key: jax.Array, n: int) -> jax.Array:
    """n points [n, d] from a mixture."""
    k_c, k_z = jax.random.split(key)
    c_N = jax.random.categorical(k_c, jnp.log(p.weight_K), shape=(n,))
    chol_KDD = jnp.linalg.cholesky(p.cov_KDD)
    z_ND = jax.random.normal(k_z, (n, p.mean_KD.shape[1]))
    return p.mean_KD[c_N] + jnp.einsum("nij,nj->ni", chol_KDD[c_N], z_ND)


def human(cfg: GMMConfig, t: Params, key: jax.Array, n: int) -> jax.Array:
    return draw(t, key, n)


def stats(cfg: GMMConfig, x_ND: jax.Array, w_N: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x_ND, w_N


combine = None  # EM needs the points


KMEANS_STEPS = 10  # Lloyd iterations before EM at generation 0


def _weighted_cov(x_ND, r_N, mean_D, reg):
    dx_ND = x_ND - mean_D
    return jnp.einsum("n,ni,nj->ij", r_N, dx_ND, dx_ND) / jnp.maximum(r_N.sum(), 1e-30) + reg * jnp.eye(x_ND.shape[1])


def init(cfg: GMMConfig, x_ND: jax.Array, key: jax.Array) -> Params:
    """scikit-learn's default: k-means++ seeding (each next mean a point drawn with probability ∝ squared
    distance to the nearest mean so far), `KMEANS_STEPS` Lloyd iterations, then weights, means and
    covariances of the hard clusters. (Broad starting covariances let EM stall with every component
    straddling the clusters.)"""
    N, K, d = x_ND.shape[0], cfg.components, x_ND.shape[1]
    keys = jax.random.split(key, K)

    def sq_dist_NK(means_KD):
        return jnp.sum((x_ND[:, None] - means_KD[None]) ** 2, -1)

    def seed(k, means_KD):  # rows not yet chosen repeat the first mean
        pick = jax.random.categorical(keys[k], jnp.log(jnp.maximum(sq_dist_NK(means_KD).min(1), 1e-30)))
        return means_KD.at[k].set(x_ND[pick])

    means_KD = jnp.broadcast_to(x_ND[jax.random.randint(keys[0], (), 0, N)], (K, d))
    means_KD = jax.lax.fori_loop(1, K, seed, means_KD)

    def lloyd(_, means_KD):
        onehot_NK = jax.nn.one_hot(jnp.argmin(sq_dist_NK(means_KD), 1), K)
        count_K = onehot_NK.sum(0)
        return jnp.where(count_K[:, None] > 0, onehot_NK.T @ x_ND / jnp.maximum(count_K, 1)[:, None], means_KD)

    means_KD = jax.lax.fori_loop(0, KMEANS_STEPS, lloyd, means_KD)
    onehot_NK = jax.nn.one_hot(jnp.argmin(sq_dist_NK(means_KD), 1), K)
    cov_KDD = jax.vmap(_weighted_cov, in_axes=(None, 1, 0, None))(x_ND, onehot_NK, means_KD, cfg.reg_covar)
    return Params(onehot_NK.mean(0), means_KD, cov_KDD, jnp.asarray(N, x_ND.dtype))


def log_density_NK(x_ND: jax.Array, p: Params) -> jax.Array:
    """log w_k + log N(x_n; μ_k, Σ_k)."""
    d = x_ND.shape[1]
    chol_KDD = jnp.linalg.cholesky(p.cov_KDD)
    dx_KDN = (x_ND[None] - p.mean_KD[:, None]).transpose(0, 2, 1)
    z_KDN = jax.scipy.linalg.solve_triangular(chol_KDD, dx_KDN, lower=True)
    logdet_K = 2 * jnp.log(jnp.diagonal(chol_KDD, axis1=1, axis2=2)).sum(-1)
    log_N_KN = -0.5 * ((z_KDN**2).sum(1) + logdet_K[:, None] + d * jnp.log(2 * jnp.pi))
    return (jnp.log(p.weight_K)[:, None] + log_N_KN).T


def fit(cfg: GMMConfig, s: tuple[jax.Array, jax.Array], previous: Params) -> Params:
    """`em_steps` EM iterations from `previous` on the points with weights w (0 = not in the training set).
    A component that receives no responsibility keeps its previous mean and covariance (weight 0)."""
    x_ND, w_N = s
    n = w_N.sum()

    def em(_, p: Params) -> Params:
        r_NK = jax.nn.softmax(log_density_NK(x_ND, p), axis=1) * w_N[:, None]
        mass_K = r_NK.sum(0)
        alive_K = mass_K > 1e-6 * n
        mean_KD = jnp.where(alive_K[:, None], (r_NK.T @ x_ND) / jnp.maximum(mass_K, 1e-30)[:, None], p.mean_KD)
        cov_KDD = jax.vmap(_weighted_cov, in_axes=(None, 1, 0, None))(x_ND, r_NK, mean_KD, cfg.reg_covar)
        cov_KDD = jnp.where(alive_K[:, None, None], cov_KDD, p.cov_KDD)
        return Params(mass_K / n, mean_KD, cov_KDD, n)

    return jax.lax.fori_loop(0, cfg.em_steps, em, previous._replace(n=n))


def sample(cfg: GMMConfig, p: Params, key: jax.Array, human_ND: jax.Array) -> jax.Array:
    return draw(p, key, cfg.samples)


def l2_distance(p: Params, q: Params) -> jax.Array:
    """‖f_p - f_q‖ in L2(R^d), exactly: ∫ f_a f_b = Σ_ij a_i b_j N(μ_i; μ_j, Σ_i + Σ_j)."""
    def cross(a: Params, b: Params) -> jax.Array:
        d = a.mean_KD.shape[1]
        cov_KLDD = a.cov_KDD[:, None] + b.cov_KDD[None]
        diff_KLD = a.mean_KD[:, None] - b.mean_KD[None]
        chol = jnp.linalg.cholesky(cov_KLDD)
        z = jax.scipy.linalg.solve_triangular(chol, diff_KLD[..., None], lower=True)[..., 0]
        logdet = 2 * jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
        dens_KL = jnp.exp(-0.5 * ((z**2).sum(-1) + logdet + d * jnp.log(2 * jnp.pi)))
        return a.weight_K @ dens_KL @ b.weight_K

    return jnp.sqrt(jnp.maximum(cross(p, p) - 2 * cross(p, q) + cross(q, q), 0))


def metrics(cfg: GMMConfig, t: Params, p: Params) -> dict[str, jax.Array]:
    order_K = jnp.argsort(p.mean_KD[:, 0])
    var_K = jnp.trace(p.cov_KDD, axis1=1, axis2=2) / cfg.dim
    out = {"l2_true": l2_distance(p, t)}
    for k in range(cfg.components):
        i = order_K[k]
        out |= {f"mean_{k}": p.mean_KD[i, 0], f"var_{k}": var_K[i], f"weight_{k}": p.weight_K[i]}
    return out


def min_points(cfg: GMMConfig) -> int:
    return cfg.components


def point_size(cfg: GMMConfig) -> int:
    return cfg.dim


def theory(cfg: GMMConfig, regime: RegimeConfig, generations: int) -> dict[str, np.ndarray]:
    """No closed form for refits by EM: {}."""
    return {}
