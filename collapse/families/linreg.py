"""The linear-regression family (Gerstgrasser et al. 2024; Dey & Donoho 2024): a fixed design, refitted labels.
A `collapse.families.protocols.AnalyticFamily`: a module of pure functions of one replicate.

Truth y = x·w* + N(0, σ²), w* ~ N(0, I/d) from `truth_seed`. Each replicate's human data is a design X
(T × d, T = `samples`, standard normal entries: drawn once per replicate) with labels from the truth;
generation k's synthetic data are labels X ŵ_k + fresh noise at the same design rows. The fit is OLS; the
metric is the test error ‖ŵ - w*‖² (the excess squared error for test inputs x ~ N(0, I)).

Closed forms (generation g is the (g + 1)-th fit; E over noise and design, E tr (XᵀX)⁻¹ = d/(T - d - 1)):
    replace:     E[test error_g] = σ² d/(T - d - 1) · (g + 1)                      (grows without bound)
    accumulate:  E[test error_g] = σ² d/(T - d - 1) · Σ_(i=1)^(g+1) 1/i²  <  (π²/6) σ² d/(T - d - 1)
Given the design both hold with tr (XᵀX)⁻¹ in place of d/(T - d - 1): under accumulate the pooled OLS
averages the per-block fits, so ŵ_g - w* = Σ_(j<=g) (XᵀX)⁻¹ Xᵀ ε_j / (j + 1).
    mix, fresh human data, weights w and 1 - w (He et al. 2025; n_h fresh human rows, n_s of the newest
    synthetic rows): with the weighted Gram matrix ≈ I (leading order in d/n),
    e_g ≈ (1 - w) e_(g-1) + w X_hᵀε_h/n_h + (1 - w) X_sᵀε_s/n_s, so
    E[test error_g] ≈ (1 - w)² E[test error_(g-1)] + σ² d (w²/n_h + (1 - w)²/n_s); the finite-sample
    corrections are of relative order d/n (about 16 % at n = 100, d = 10; within 1 % at n = 1000, d = 2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse.families import LinRegConfig
from collapse.regimes import RegimeConfig


class Data(NamedTuple):
    x_ND: jax.Array
    y_N: jax.Array


class Stats(NamedTuple):
    xtx_DD: jax.Array
    xty_D: jax.Array
    n: jax.Array


class Params(NamedTuple):
    w_D: jax.Array
    n: jax.Array


def truth(cfg: LinRegConfig) -> jax.Array:
    return jnp.asarray(np.random.default_rng(cfg.truth_seed).normal(size=cfg.dim) / np.sqrt(cfg.dim), jnp.float32)


def _labels(cfg: LinRegConfig, w_D: jax.Array, x_ND: jax.Array, key: jax.Array) -> jax.Array:
    return x_ND @ w_D + jnp.sqrt(cfg.noise) * jax.random.normal(key, x_ND.shape[:1])


def human(cfg: LinRegConfig, w_D: jax.Array, key: jax.Array, n: int) -> Data:
    k_x, k_y = jax.random.split(key)
    x_ND = jax.random.normal(k_x, (n, cfg.dim))
    return Data(x_ND, _labels(cfg, w_D, x_ND, k_y))


def stats(cfg: LinRegConfig, data: Data, w_N: jax.Array) -> Stats:
    xw_ND = data.x_ND * w_N[:, None]
    return Stats(xw_ND.T @ data.x_ND, xw_ND.T @ data.y_N, w_N.sum())


def combine(a: Stats, b: Stats) -> Stats:
    return jax.tree.map(jnp.add, a, b)


def init(cfg: LinRegConfig, data: Data, key: jax.Array) -> None:
    return None


def fit(cfg: LinRegConfig, s: Stats, previous: Params | None) -> Params:
    return Params(jnp.linalg.solve(s.xtx_DD, s.xty_D), s.n)


def sample(cfg: LinRegConfig, p: Params, key: jax.Array, human_data: Data) -> Data:
    return Data(human_data.x_ND, _labels(cfg, p.w_D, human_data.x_ND, key))


def metrics(cfg: LinRegConfig, w_D: jax.Array, p: Params) -> dict[str, jax.Array]:
    return {"test_error": jnp.sum((p.w_D - w_D) ** 2)}


def min_points(cfg: LinRegConfig) -> int:
    return cfg.dim


def point_size(cfg: LinRegConfig) -> int:
    return cfg.dim + 1


# ------------------------------------------------------------------------------------------- theory


def error_unit(cfg: LinRegConfig) -> float:
    """σ² d/(T - d - 1): the expected test error of one OLS fit on human data."""
    return cfg.noise * cfg.dim / (cfg.samples - cfg.dim - 1)


def error_factor(regime: RegimeConfig, generations: int) -> np.ndarray | None:
    """E[test error_g] in units of `error_unit` (given the design: of σ² tr (XᵀX)⁻¹), g = 0..generations-1;
    None for regimes without a closed form."""
    i = np.arange(1, generations + 1, dtype=np.float64)
    if regime.name == "replace":
        return i
    if regime.name == "accumulate":
        return np.cumsum(1 / i**2)
    return None


def expected_test_error(cfg: LinRegConfig, regime: RegimeConfig, generations: int) -> np.ndarray | None:
    factor = error_factor(regime, generations)
    return None if factor is None else error_unit(cfg) * factor


def _mix_terms(cfg: LinRegConfig, regime) -> tuple[float, float]:
    """The fresh mix's leading-order recursion E[error_g] = c · E[error_(g-1)] + b (module docstring)."""
    n_h, n_s = regime.counts(cfg.samples)
    w = regime.weight(cfg.samples)
    w = n_h / (n_h + n_s) if w is None else w
    return (1 - w) ** 2, cfg.noise * cfg.dim * (w**2 / n_h + (1 - w) ** 2 / n_s)


def expected_fresh_mix(cfg: LinRegConfig, regime, generations: int) -> np.ndarray:
    """E[test_error_g], g = 0..generations-1, under mix with fresh human data (weighted by `human_weight` or by
    count), to leading order in dim / samples: generation 0 is OLS on the human design, then the recursion."""
    c, b = _mix_terms(cfg, regime)
    out = [error_unit(cfg)]
    for _ in range(generations - 1):
        out.append(c * out[-1] + b)
    return np.array(out)


def stationary_fresh_mix(cfg: LinRegConfig, regime) -> float:
    """The fixed point b / (1 - c) of `expected_fresh_mix`: σ² d (w²/n_h + (1 - w)²/n_s) / (1 - (1 - w)²), least
    at He et al.'s golden weight w* = (√(k² + 4k) - k)/2, k = n_h/n_s."""
    c, b = _mix_terms(cfg, regime)
    return b / (1 - c)


def theory(cfg: LinRegConfig, regime: RegimeConfig, generations: int) -> dict[str, np.ndarray]:
    """E[test_error] under replace and accumulate (over noise and design), and to leading order under mix with
    fresh human data; {} under the other regimes."""
    if regime.name == "mix" and regime.fresh and 0 < regime.human_fraction < 1:
        return {"test_error": expected_fresh_mix(cfg, regime, generations)}
    expected = expected_test_error(cfg, regime, generations)
    return {} if expected is None else {"test_error": expected}
