"""The Gaussian ecosystem (docs/ecosystems.md#the-gaussian-ecosystem): K labs, each refitting a 1-D Gaussian every
round on its own real samples and on samples from the labs' current models, composed by W (Vu et al. 2026's
linear-Gaussian setting). Simulation (one compiled program over replicates and rounds) and its exact moments.

Round 0: lab k fits N(μ_k, σ²_k) (pooled mean, unbiased variance) to n real points of the truth N(μ*, σ*²),
n_s of them shared by every lab (drawn once per round), n − n_s its own. Round t ≥ 1: the same n real points
(new ones) and c_kj points from lab j's round t − 1 model, Σ_j c_kj = m (`counts`: W's row k times m,
`collapse.run.pools.allocate`). Given the round's parameters θ, with N = n + m and a_k = (n μ* + Σ_j c_kj μ_j)/N:

    E[μ'_k μ'_l | θ] = a_k a_l + (n_s σ*² + δ_kl (n_p σ*² + Σ_j c_kj σ²_j)) / N²
    E[(N − 1) σ'²_k | θ] = (1 − 1/N)(n σ*² + Σ_j c_kj σ²_j) + n μ*² + Σ_j c_kj μ²_j − N a²_k

(the second: the within-group variances plus the spread of the group means about their pooled mean). Both are
linear in (E μ, E μμᵀ, E σ²), so `moments` iterates the expectations exactly. The labs' disagreement
E[(μ_k − μ_l)²] = M_kk + M_ll − 2 M_kl; its transient decays at the consensus rate (m / N) |λ₂(W)| per round
(`consensus_rate`), the second-largest eigenvalue modulus of W scaled by the synthetic share.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Moments(NamedTuple):
    mean_TK: np.ndarray  # E μ_k per round
    second_TKK: np.ndarray  # E μ_k μ_l
    var_TK: np.ndarray  # E σ²_k

    def disagreement_TKK(self) -> np.ndarray:
        """E[(μ_k − μ_l)²] per round."""
        d_TK = np.diagonal(self.second_TKK, axis1=1, axis2=2)
        return d_TK[:, :, None] + d_TK[:, None, :] - 2 * self.second_TKK

    def error_TK(self, mu_star: float) -> np.ndarray:
        """E[(μ_k − μ*)²] per round."""
        return np.diagonal(self.second_TKK, axis1=1, axis2=2) - 2 * mu_star * self.mean_TK + mu_star**2


def counts(W_KK: np.ndarray, m: int) -> np.ndarray:
    """Synthetic points lab k draws from lab j `[K, K]`: each row of W times m, rounded to sum to m."""
    from collapse.run.pools import allocate

    W_KK = np.asarray(W_KK, np.float64)
    if W_KK.ndim != 2 or W_KK.shape[0] != W_KK.shape[1] or (W_KK < 0).any() or not np.allclose(W_KK.sum(1), 1):
        raise ValueError(f"W must be a square row-stochastic matrix, got {W_KK.tolist()}")
    out = np.zeros(W_KK.shape, np.int64)
    for k, row in enumerate(W_KK):
        for j, c in allocate(dict(enumerate(row)), m).items():
            out[k, j] = c
    return out


def consensus_rate(W_KK: np.ndarray, n: int, m: int) -> float:
    """(m / (n + m)) |λ₂(W)|: the factor by which the labs' mean disagreement shrinks per round, noise aside."""
    moduli = np.sort(np.abs(np.linalg.eigvals(np.asarray(W_KK, np.float64))))[::-1]
    return float(m / (n + m) * (moduli[1] if len(moduli) > 1 else 0.0))


def moments(C_KK: np.ndarray, n: int, n_shared: int, rounds: int, mu_star: float = 0.0, sigma_star: float = 1.0
            ) -> Moments:
    """The exact expectations of every round (module docstring), float64."""
    C = np.asarray(C_KK, np.float64)
    K, m = len(C), C.sum(1)[0]
    s2, n_p = sigma_star**2, n - n_shared
    mean, second, var = np.full(K, mu_star), np.zeros((K, K)), np.full(K, s2)
    out = []
    for t in range(rounds):
        c = C if t else np.zeros_like(C)
        N = n + (m if t else 0)
        a = (n * mu_star + c @ mean) / N  # E a_k
        aa = (n**2 * mu_star**2 + n * mu_star * (np.add.outer(c @ mean, c @ mean)) + c @ second @ c.T) / N**2
        noise = (n_shared * s2 + np.diag(n_p * s2 + c @ var)) / N**2
        within = (1 - 1 / N) * (n * s2 + c @ var)
        spread = n * mu_star**2 + c @ np.diag(second) - N * np.diag(aa)
        mean, second, var = a, aa + noise, (within + spread) / (N - 1)
        out.append((mean, second, var))
    return Moments(*(np.stack(x) for x in zip(*out)))


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _simulate(key, source_Km: tuple, n: int, n_shared: int, rounds: int, replicates: int, mu_star, sigma_star):
    src_Km = jnp.asarray(source_Km, jnp.int32)
    K, m = src_Km.shape
    R = replicates

    def real(key):  # [R, K, n]: n_shared points every lab shares, then each lab's own
        k1, k2 = jax.random.split(key)
        shared_R1S = jax.random.normal(k1, (R, 1, n_shared))
        own_RKP = jax.random.normal(k2, (R, K, n - n_shared))
        return mu_star + sigma_star * jnp.concatenate([jnp.broadcast_to(shared_R1S, (R, K, n_shared)), own_RKP], -1)

    def fit(x_RKN):
        return x_RKN.mean(-1), x_RKN.var(-1, ddof=1)

    def step(carry, key):
        mu_RK, var_RK = carry
        k1, k2 = jax.random.split(key)
        synth_RKm = mu_RK[:, src_Km] + jnp.sqrt(var_RK)[:, src_Km] * jax.random.normal(k2, (R, K, m))
        mu_RK, var_RK = fit(jnp.concatenate([real(k1), synth_RKm], -1))
        return (mu_RK, var_RK), (mu_RK, var_RK)

    k0, rest = jax.random.split(key)
    first = fit(real(k0))
    _, (mu_TRK, var_TRK) = jax.lax.scan(step, first, jax.random.split(rest, rounds - 1))
    return (jnp.concatenate([first[0][None], mu_TRK]), jnp.concatenate([first[1][None], var_TRK]))


def simulate(key: jax.Array, C_KK: np.ndarray, n: int, n_shared: int, rounds: int, replicates: int,
             mu_star: float = 0.0, sigma_star: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(μ `[T, R, K]`, σ² `[T, R, K]`) of every round and replicate, in one compiled program."""
    C = np.asarray(C_KK, np.int64)
    if len(set(C.sum(1))) != 1 or not 0 <= n_shared <= n or rounds < 1 or n < 2:
        raise ValueError("every lab draws m synthetic points, 0 <= n_shared <= n, n >= 2, rounds >= 1")
    source_Km = tuple(tuple(int(j) for j in np.repeat(np.arange(len(C)), row)) for row in C)
    mu, var = _simulate(key, source_Km, n, n_shared, rounds, replicates, mu_star, sigma_star)
    return np.asarray(mu, np.float64), np.asarray(var, np.float64)
