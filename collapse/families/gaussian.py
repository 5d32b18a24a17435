"""The d-dimensional Gaussian family: refit mean and covariance, sample `samples` points, repeat.
A `collapse.families.protocols.AnalyticFamily`: a module of pure functions of one replicate.

Truth N(0, std² I). The fit is the MLE (divide by n) or the unbiased estimator (divide by n - 1); generation
k samples from N(μ_k, λ Σ_k) with λ = `bias` (Alemohammad et al. 2023). Statistics are kept centred
(count, mean, centred scatter) and merged with Chan et al.'s pairwise update, so variances that collapse
by many orders of magnitude stay accurate in float32.

Closed forms (generation g is the (g + 1)-th fit; σ² is tr Σ / tr Σ_0; c = (M - 1)/M for the MLE, 1 unbiased):
    replace:     E[σ²_g] = λ^g c^(g+1)       (a 1-D MLE of M points is σ² χ²_(M-1)/M: each fit scales E[σ²] by c)
                 unbiased, λ = 1: E[σ²_g] = σ²_0, yet σ²_g → 0 almost surely and E[W2²(fit_g, truth)] → ∞
                 (Shumailov et al. 2024, Thm 3.1)
                 E[log det Σ_g/det Σ_0] = (g + 1) [Σ_i ψ((M - 1 - i)/2) + d log(2/D)] + g d log λ,  D = M or M - 1
    accumulate:  E[S_(g+1)] = E[S_g] (1 + λ (M - 1/(g + 2)) / D_g),  E[σ²_g] = E[S_g] / (D_g tr Σ_0)
                 with S_g the pooled centred scatter of (g + 1) M points and D_g = (g + 1) M (- 1 if unbiased);
                 for the MLE with λ = 1: E[σ²_g] = c Π_(k=2)^(g+1) (1 - 1/(M k²)) → sin(π/√M)/(π/√M) > 0.
    mix, fresh:  E‖μ_g‖² = d a_g, E[σ²_g] = v_g / s², with n_h fresh truth draws of weight w n/n_h and n_s draws
                 of the previous fit of weight (1 - w) n/n_s (w = n_h/n unweighted; regime.human_weight):
                 a_g = w² s²/n_h + (1 - w)² (a_(g-1) + λ v_(g-1)/n_s)
                 v_g = (n/D) [w (n_h - 1)/n_h s² + (1 - w)(n_s - 1)/n_s λ v_(g-1)
                              + w (1 - w)(s²/n_h + λ v_(g-1)/n_s + a_(g-1))]
                 (the weighted scatter is the within-part scatters plus n w (1 - w)(x̄ - ȳ)²), linear in (a, v): its
                 fixed point is the stationary error, minimised near He et al.'s golden weight.
The accumulate recursion (derived here; Kazdan et al. 2024 show the variance stays bounded): a block of M
points from N(m, λ v) adds (M - 1) λ v in expectation to the within-block scatter and M (n+1)/(n+2) (a - m)²
to the between-block scatter, E = λ v (n+1)/(n+2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse.families import GaussianConfig
from collapse.regimes import RegimeConfig, ReplaceConfig


class Truth(NamedTuple):
    mean_D: jax.Array
    std: jax.Array


class Stats(NamedTuple):
    n: jax.Array
    mean_D: jax.Array
    scatter_DD: jax.Array  # Σ w (x - mean)(x - mean)ᵀ


class Params(NamedTuple):
    mean_D: jax.Array
    cov_DD: jax.Array
    n: jax.Array  # points the fit saw


def truth(cfg: GaussianConfig) -> Truth:
    return Truth(jnp.zeros(cfg.dim), jnp.asarray(cfg.std, jnp.float32))


def human(cfg: GaussianConfig, t: Truth, key: jax.Array, n: int) -> jax.Array:
    return t.mean_D + t.std * jax.random.normal(key, (n, cfg.dim))


def stats(cfg: GaussianConfig, x_ND: jax.Array, w_N: jax.Array) -> Stats:
    n = w_N.sum()
    mean_D = (w_N[:, None] * x_ND).sum(0) / n
    dx_ND = x_ND - mean_D
    return Stats(n, mean_D, jnp.einsum("n,ni,nj->ij", w_N, dx_ND, dx_ND))


def combine(a: Stats, b: Stats) -> Stats:
    """Statistics of the union (Chan, Golub & LeVeque's pairwise update)."""
    n = a.n + b.n
    delta_D = b.mean_D - a.mean_D
    return Stats(n, a.mean_D + delta_D * b.n / n,
                 a.scatter_DD + b.scatter_DD + jnp.outer(delta_D, delta_D) * a.n * b.n / n)


def init(cfg: GaussianConfig, x_ND: jax.Array, key: jax.Array) -> None:
    return None


def fit(cfg: GaussianConfig, s: Stats, previous: Params | None) -> Params:
    dof = s.n - (1 if cfg.estimator == "unbiased" else 0)
    return Params(s.mean_D, s.scatter_DD / dof, s.n)


def sqrt_psd(cov_DD: jax.Array) -> jax.Array:
    """Symmetric square root of a PSD matrix (eigenvalues clipped at 0)."""
    if cov_DD.shape == (1, 1):
        return jnp.sqrt(jnp.maximum(cov_DD, 0))
    values_D, vectors_DD = jnp.linalg.eigh(cov_DD)
    return (vectors_DD * jnp.sqrt(jnp.maximum(values_D, 0))) @ vectors_DD.T


def sample(cfg: GaussianConfig, p: Params, key: jax.Array, human_ND: jax.Array) -> jax.Array:
    z_ND = jax.random.normal(key, (cfg.samples, cfg.dim))
    return p.mean_D + z_ND @ sqrt_psd(cfg.bias * p.cov_DD)


def _eigenvalues(cov_DD: jax.Array) -> jax.Array:
    return cov_DD.reshape(1) if cov_DD.shape == (1, 1) else jnp.linalg.eigvalsh(cov_DD)


def metrics(cfg: GaussianConfig, t: Truth, p: Params) -> dict[str, jax.Array]:
    """‖μ - μ_0‖², tr Σ/tr Σ_0, det Σ/det Σ_0 and the 2-Wasserstein distance to the truth N(μ_0, s² I):
    W2² = ‖μ - μ_0‖² + tr Σ + d s² - 2 s tr Σ^½."""
    d, var0 = cfg.dim, t.std**2
    values_D = jnp.maximum(_eigenvalues(p.cov_DD), 0)
    mean_sq = jnp.sum((p.mean_D - t.mean_D) ** 2)
    w2_sq = mean_sq + values_D.sum() + d * var0 - 2 * t.std * jnp.sqrt(values_D).sum()
    return {"mean_sq_dist": mean_sq, "var_ratio": values_D.sum() / (d * var0),
            "det_ratio": jnp.prod(values_D / var0), "w2_true": jnp.sqrt(jnp.maximum(w2_sq, 0))}


# ------------------------------------------------------------------------------------------- theory


def _dof(cfg: GaussianConfig, n: np.ndarray | int) -> np.ndarray:
    return np.asarray(n, np.float64) - (1 if cfg.estimator == "unbiased" else 0)


def expected_var_ratio(cfg: GaussianConfig, regime: RegimeConfig, generations: int) -> np.ndarray | None:
    """E[tr Σ_g / tr Σ_0] for g = 0..generations-1 (replace and accumulate; None for other regimes)."""
    M, lam = cfg.samples, cfg.bias
    g = np.arange(generations)
    if regime.name == "replace":
        c = (M - 1) / _dof(cfg, M)
        return c ** (g + 1) * lam**g
    if regime.name == "accumulate":
        dof_G = _dof(cfg, (g + 1) * M)
        growth_G = 1 + lam * (M - 1 / (g + 2)) / dof_G
        scatter_G = (M - 1) * np.concatenate([[1.0], np.cumprod(growth_G[:-1])])
        return scatter_G / dof_G
    return None


def expected_log_det_ratio(cfg: GaussianConfig, generations: int) -> np.ndarray:
    """E[log det Σ_g / det Σ_0] under replace: a sum of independent log-Wishart steps. Negative for every
    estimator, so log det Σ_g → -∞ almost surely (law of large numbers) even when E[σ²_g] stays 1."""
    from scipy.special import digamma

    M, d = cfg.samples, cfg.dim
    step = sum(digamma((M - 1 - i) / 2) for i in range(d)) + d * np.log(2 / _dof(cfg, M))
    g = np.arange(generations)
    return (g + 1) * step + g * d * np.log(cfg.bias)


def expected_mean_sq_dist(cfg: GaussianConfig, generations: int) -> np.ndarray:
    """E‖μ_g - μ_0‖² under replace: each refit adds the sampling variance tr(λ Σ_(g-1))/M of a mean."""
    d, M = cfg.dim, cfg.samples
    var_G = expected_var_ratio(cfg, ReplaceConfig(), generations) * d * cfg.std**2
    step_G = np.concatenate([[d * cfg.std**2], cfg.bias * var_G[:-1]]) / M
    return np.cumsum(step_G)


def _mix_step(cfg: GaussianConfig, regime) -> tuple[np.ndarray, np.ndarray]:
    """The fresh mix's moment recursion (module docstring) as (A, b): (a_g, v_g) = A (a_(g-1), v_(g-1)) + b."""
    s2, lam = cfg.std**2, cfg.bias
    n_h, n_s = regime.counts(cfg.samples)
    n = n_h + n_s
    w = regime.weight(cfg.samples)
    w = n_h / n if w is None else w
    c = n / _dof(cfg, n)
    A = np.array([[(1 - w) ** 2, (1 - w) ** 2 * lam / n_s],
                  [c * w * (1 - w), c * ((1 - w) * (n_s - 1) / n_s * lam + w * (1 - w) * lam / n_s)]])
    b = np.array([w**2 * s2 / n_h, c * (w * (n_h - 1) / n_h * s2 + w * (1 - w) * s2 / n_h)])
    return A, b


def expected_fresh_mix(cfg: GaussianConfig, regime, generations: int) -> dict[str, np.ndarray]:
    """E[mean_sq_dist] and E[var_ratio] for g = 0..generations-1 under mix with fresh human data each generation
    (`regime.fresh`; weighted by `regime.human_weight` or not)."""
    A, b = _mix_step(cfg, regime)
    x = np.array([cfg.std**2 / cfg.samples, (cfg.samples - 1) / _dof(cfg, cfg.samples) * cfg.std**2])
    rows = [x]
    for _ in range(generations - 1):
        rows.append(x := A @ x + b)
    a_G, v_G = np.array(rows).T
    return {"mean_sq_dist": cfg.dim * a_G, "var_ratio": v_G / cfg.std**2}


def stationary_fresh_mix(cfg: GaussianConfig, regime) -> dict[str, float]:
    """The fixed point of the fresh mix's recursion: the stationary E[mean_sq_dist] and E[var_ratio]."""
    A, b = _mix_step(cfg, regime)
    a, v = np.linalg.solve(np.eye(2) - A, b)
    return {"mean_sq_dist": float(cfg.dim * a), "var_ratio": float(v / cfg.std**2)}


def theory(cfg: GaussianConfig, regime: RegimeConfig, generations: int) -> dict[str, np.ndarray]:
    """The closed forms above the report draws: E[var_ratio] under replace and accumulate (and E[det_ratio],
    the same number in one dimension), E[mean_sq_dist] under replace, both under mix with fresh human data."""
    if regime.name == "mix" and regime.fresh and 0 < regime.human_fraction < 1:
        out = expected_fresh_mix(cfg, regime, generations)
        return {**out, "det_ratio": out["var_ratio"]} if cfg.dim == 1 else out
    out = {}
    var_G = expected_var_ratio(cfg, regime, generations)
    if var_G is not None:
        out["var_ratio"] = var_G
        if cfg.dim == 1:
            out["det_ratio"] = var_G
    if regime.name == "replace":
        out["mean_sq_dist"] = expected_mean_sq_dist(cfg, generations)
    return out


def min_points(cfg: GaussianConfig) -> int:
    return cfg.dim + 1


def point_size(cfg: GaussianConfig) -> int:
    return cfg.dim
