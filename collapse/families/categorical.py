"""The categorical family: a unigram (or n-gram) over a Zipf vocabulary, refitted by maximum likelihood.
A `collapse.families.protocols.AnalyticFamily`: a module of pure functions of one replicate.

Truth: order 1, p(i) ∝ (i + 1)^-β over V symbols; order n ≥ 2, every context of the previous n - 1 tokens
(BOS-padded) has its own random permutation of those weights (from `truth_seed`). A data set is
`[N, seq_len]` tokens; the parameters are the counts of (context, token) pairs [C, V], C = (V + 1)^(n - 1):
the fit is counts / row totals, and a context never seen falls back to the token frequencies. Generation k
samples from its fit through temperature, then top-k, then top-p on the renormalised top-k distribution
(the order of `collapse.sample`; temperature 0 = the most likely token; ties in rank go to the lower index).

Metrics compare the fitted token frequencies f with the truth's expected token frequencies p: `support`
(symbols with f > 0), `missing_mass` (true mass of the symbols lost), `tv_true` = ½ Σ |f - p|,
`unigram_entropy` (bits) and `zipf_exponent` (least-squares slope of log f on log rank over the ranks seen
at least 10 times: the effective tail exponent).

Closed forms (order 1, n = samples · seq_len tokens per generation, replace, no sampling knobs):
    a symbol of probability p is absent from n tokens with probability (1 - p)^n;
    its count is a Wright-Fisher chain c' ~ Binomial(n, c/n), so survival is a matrix power
    (`survival_probability`); Suresh et al. 2024: Pr[survives k refits] ≥ 1 - exp(-np/k).
Dohmatob et al. 2024 (infinite-sample limit): temperature τ turns Zipf(β) into Zipf(β/τ), so the exponent
after g sampling steps is β/τ^g; top-k keeps k symbols and top-p the smallest nucleus (`tail_curve`).

Shape suffixes: the package's (collapse/__init__.py), and C contexts (n - 1 tokens, BOS-padded), L tokens of
a sequence.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse.families import CategoricalConfig
from collapse.regimes import RegimeConfig


class Truth(NamedTuple):
    table_CV: jax.Array  # next-token probabilities per context
    marginal_V: jax.Array  # expected token frequency over the seq_len positions of a sequence


class Params(NamedTuple):
    counts_CV: jax.Array
    n: jax.Array  # tokens the fit saw


def contexts(cfg: CategoricalConfig) -> int:
    return (cfg.vocab_size + 1) ** (cfg.order - 1)


def _start(cfg: CategoricalConfig) -> int:
    """The all-BOS context (BOS = V in every slot)."""
    return contexts(cfg) - 1


def zipf(vocab_size: int, exponent: float) -> np.ndarray:
    w = np.arange(1, vocab_size + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def truth(cfg: CategoricalConfig) -> Truth:
    V, C = cfg.vocab_size, contexts(cfg)
    w_V = zipf(V, cfg.zipf_exponent)
    if cfg.order == 1:
        table_CV = w_V[None]
    else:
        rank_CV = np.argsort(np.random.default_rng(cfg.truth_seed).random((C, V)), axis=1)
        table_CV = w_V[rank_CV]
    context_C = np.zeros(C)
    context_C[_start(cfg)] = 1.0
    marginal_V = np.zeros(V)
    next_CV = (np.arange(C)[:, None] * (V + 1) + np.arange(V)) % C
    for _ in range(cfg.seq_len):
        joint_CV = context_C[:, None] * table_CV
        marginal_V += joint_CV.sum(0) / cfg.seq_len
        context_C = np.bincount(next_CV.ravel(), joint_CV.ravel(), minlength=C)
    return Truth(jnp.asarray(table_CV, jnp.float32), jnp.asarray(marginal_V, jnp.float32))


def draw(cfg: CategoricalConfig, table_CV: jax.Array, key: jax.Array, n: int) -> jax.Array:
    """n sequences [n, seq_len] from a next-token table (inverse CDF: O(log V) per unigram token)."""
    V, C, L = cfg.vocab_size, contexts(cfg), cfg.seq_len
    cdf_CV = jnp.cumsum(table_CV, axis=1)

    def pick(cdf_V, u):  # u < cdf[-1]: never an index of zero probability, even when trailing ones are
        return jnp.minimum(jnp.searchsorted(cdf_V, u * cdf_V[-1], side="right"), V - 1).astype(jnp.int32)

    if cfg.order == 1:
        return pick(cdf_CV[0], jax.random.uniform(key, (n, L)))

    def step(context_N, k):
        token_N = jax.vmap(pick)(cdf_CV[context_N], jax.random.uniform(k, (n,)))
        return (context_N * (V + 1) + token_N) % C, token_N

    _, token_LN = jax.lax.scan(step, jnp.full(n, _start(cfg), jnp.int32), jax.random.split(key, L))
    return token_LN.T


def human(cfg: CategoricalConfig, t: Truth, key: jax.Array, n: int) -> jax.Array:
    return draw(cfg, t.table_CV, key, n)


def _context_NL(cfg: CategoricalConfig, tokens_NL: jax.Array) -> jax.Array:
    V, C = cfg.vocab_size, contexts(cfg)

    def step(context_N, token_N):
        return (context_N * (V + 1) + token_N) % C, context_N

    _, context_LN = jax.lax.scan(step, jnp.full(tokens_NL.shape[0], _start(cfg), jnp.int32), tokens_NL.T)
    return context_LN.T


def stats(cfg: CategoricalConfig, tokens_NL: jax.Array, w_N: jax.Array) -> Params:
    V, C = cfg.vocab_size, contexts(cfg)
    w_NL = jnp.broadcast_to(w_N[:, None], tokens_NL.shape)
    flat = tokens_NL if cfg.order == 1 else _context_NL(cfg, tokens_NL) * V + tokens_NL
    counts = jnp.zeros(C * V).at[flat.ravel()].add(w_NL.ravel())
    return Params(counts.reshape(C, V), w_NL.sum())


def combine(a: Params, b: Params) -> Params:
    return jax.tree.map(jnp.add, a, b)


def init(cfg: CategoricalConfig, tokens_NL: jax.Array, key: jax.Array) -> None:
    return None


def fit(cfg: CategoricalConfig, s: Params, previous: Params | None) -> Params:
    return s  # the counts are the fit; `probabilities` normalises them


def frequencies(p: Params) -> jax.Array:
    return p.counts_CV.sum(0) / p.n


def probabilities(p: Params) -> jax.Array:
    """Maximum-likelihood next-token table [C, V]; unseen contexts fall back to the token frequencies."""
    total_C1 = p.counts_CV.sum(1, keepdims=True)
    return jnp.where(total_C1 > 0, p.counts_CV / jnp.maximum(total_C1, 1), frequencies(p))


def filter_logits(cfg: CategoricalConfig, logits_CV: jax.Array) -> jax.Array:
    """Log-weights of the sampling distribution, up to a constant per row: temperature, then top-k, then top-p
    (kept while the mass before < top_p); -inf marks a symbol cut. `top_k` >= V and `top_p` = 1 cut nothing:
    a float32 cumulative mass rounds to 1 before the last symbols, so the nucleus test runs only for top_p < 1."""
    V = logits_CV.shape[-1]
    if cfg.temperature == 0:
        return jnp.where(jnp.arange(V) == jnp.argmax(logits_CV, axis=-1, keepdims=True), 0.0, -jnp.inf)
    logits_CV = logits_CV / cfg.temperature
    top_k = cfg.top_k if cfg.top_k < V else 0
    if top_k or cfg.top_p < 1:
        order_CV = jnp.argsort(-logits_CV, axis=-1, stable=True)
        sorted_CV = jnp.take_along_axis(logits_CV, order_CV, axis=-1)
        if top_k:
            sorted_CV = jnp.where(jnp.arange(V) < top_k, sorted_CV, -jnp.inf)
        if cfg.top_p < 1:
            p_CV = jax.nn.softmax(sorted_CV, axis=-1)
            sorted_CV = jnp.where(jnp.cumsum(p_CV, axis=-1) - p_CV < cfg.top_p, sorted_CV, -jnp.inf)
        logits_CV = jnp.take_along_axis(sorted_CV, jnp.argsort(order_CV, axis=-1), axis=-1)
    return logits_CV


def transform(cfg: CategoricalConfig, probs_CV: jax.Array) -> jax.Array:
    """The sampling distribution of a next-token table (`filter_logits` of its log-probabilities)."""
    log_CV = jnp.where(probs_CV > 0, jnp.log(jnp.where(probs_CV > 0, probs_CV, 1)), -jnp.inf)
    return jax.nn.softmax(filter_logits(cfg, log_CV), axis=-1).astype(probs_CV.dtype)


def sample(cfg: CategoricalConfig, p: Params, key: jax.Array, human_NL: jax.Array) -> jax.Array:
    return draw(cfg, transform(cfg, probabilities(p)), key, cfg.samples)


def zipf_slope(freq_V: jax.Array, use_V: jax.Array) -> jax.Array:
    """Least-squares slope of log frequency on log rank (ranks by decreasing frequency) over `use_V`, which
    is in rank order; -slope is the effective Zipf exponent (nan with fewer than two ranks)."""
    sorted_V = -jnp.sort(-freq_V)
    log_rank = jnp.log(jnp.arange(1, freq_V.shape[0] + 1, dtype=jnp.float32))
    log_freq = jnp.log(jnp.where(use_V, sorted_V, 1))
    w = use_V.astype(jnp.float32)
    n = w.sum()
    mx, my = (w * log_rank).sum() / n, (w * log_freq).sum() / n
    cov = (w * (log_rank - mx) * (log_freq - my)).sum()
    var = (w * (log_rank - mx) ** 2).sum()
    return jnp.where(n >= 2, cov / jnp.where(var > 0, var, 1), jnp.nan)


def metrics(cfg: CategoricalConfig, t: Truth, p: Params) -> dict[str, jax.Array]:
    f_V = frequencies(p)
    lost_V = f_V == 0
    plogp = jnp.where(lost_V, 0, f_V * jnp.log2(jnp.where(lost_V, 1, f_V)))
    well_seen_V = -jnp.sort(-f_V) * p.n >= 10
    return {"support": (~lost_V).sum().astype(jnp.float32), "missing_mass": jnp.where(lost_V, t.marginal_V, 0).sum(),
            "tv_true": 0.5 * jnp.abs(f_V - t.marginal_V).sum(), "unigram_entropy": -plogp.sum(),
            "zipf_exponent": -zipf_slope(f_V, well_seen_V)}


def min_points(cfg: CategoricalConfig) -> int:
    return 1


def point_size(cfg: CategoricalConfig) -> int:
    return cfg.seq_len


# ------------------------------------------------------------------------------------------- theory


def loss_probability(p_V: np.ndarray, n: int) -> np.ndarray:
    """Probability that a symbol of probability p is absent from n independent tokens: (1 - p)^n."""
    return (1 - np.asarray(p_V, np.float64)) ** n


def lost_moments(p_V: np.ndarray, n: int) -> tuple[float, float]:
    """Exact mean and variance of the number of symbols absent from n multinomial tokens:
    Var = Σ_i q_i (1 - q_i) + Σ_(i≠j) [(1 - p_i - p_j)^n - q_i q_j], q_i = (1 - p_i)^n."""
    p = np.asarray(p_V, np.float64)
    q = (1 - p) ** n
    both = np.clip(1 - p[:, None] - p[None, :], 0, 1) ** n
    np.fill_diagonal(both, q)
    return float(q.sum()), float(both.sum() - q.sum() ** 2)


def survival_probability(p: float | np.ndarray, n: int, fits: int) -> np.ndarray:
    """Pr[a symbol of true probability p is still present after k = 1..fits refits] under replace (order 1),
    `[fits, *p.shape]`: its count is Binomial(n, p) after the first fit, then a Wright-Fisher chain
    c' ~ Binomial(n, c/n). Count 0 absorbs, so Pr[lost after k fits] = Σ_c Binomial(c; n, p) a_k(c) with
    a_1 = [c = 0] and a_(k+1) = step a_k: one chain for every p at once."""
    from scipy.stats import binom

    c = np.arange(n + 1)
    step_CC = binom.pmf(c[None, :], n, c[:, None] / n)
    first_CP = binom.pmf(c[:, None], n, np.ravel(p)[None, :])
    absent_KC = np.zeros((fits, n + 1))  # Pr[count 0 after k - 1 more steps | count c]
    absent_KC[0, 0] = 1
    for k in range(1, fits):
        absent_KC[k] = step_CC @ absent_KC[k - 1]
    return np.reshape(1 - absent_KC @ first_CP, (fits, *np.shape(p)))


def suresh_bound(p: float, n: int, fits: int) -> np.ndarray:
    """Suresh et al. 2024: Pr[survives k refits] ≥ 1 - exp(-np/k), k = 1..fits."""
    return 1 - np.exp(-n * p / np.arange(1, fits + 1))


def tail_curve(cfg: CategoricalConfig, generations: int) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-sample limit, order 1: (support, Zipf exponent) of generation g = 0..generations-1, whose fit
    is the truth passed g times through the sampling knobs. Temperature τ maps Zipf(β) to Zipf(β/τ); top-k
    and top-p cut the support and keep the exponent. The support counts symbols of positive probability, so
    it is tracked in log space (`filter_logits`): at τ < 1 the tail's probabilities soon underflow float32
    while staying positive in the limit."""
    logq_1V = jnp.asarray(np.log(zipf(cfg.vocab_size, cfg.zipf_exponent)), jnp.float32)[None]
    support = []
    for _ in range(generations):
        support.append(int(jnp.isfinite(logq_1V).sum()))
        logq_1V = jax.nn.log_softmax(filter_logits(cfg, logq_1V), axis=-1)
    g = np.arange(generations)
    with np.errstate(divide="ignore"):
        exponent = cfg.zipf_exponent * np.float64(cfg.temperature) ** -g.astype(np.float64)
    return np.asarray(support), exponent


MAX_CHAIN = 4096  # tokens per generation up to which `theory` runs the Wright-Fisher chain ([n + 1]² matrix)


def theory(cfg: CategoricalConfig, regime: RegimeConfig, generations: int) -> dict[str, np.ndarray]:
    """E[support] = Σ_i Pr[symbol i survives g + 1 refits] and E[missing_mass] = Σ_i p_i Pr[i is lost] at
    g = 0..generations-1 (`survival_probability`), where they are exact: a unigram refitted under replace
    from n = samples · seq_len <= `MAX_CHAIN` tokens, sampled without temperature, top-k or top-p; else {}."""
    n = cfg.samples * cfg.seq_len
    plain = cfg.temperature == 1 and cfg.top_k == 0 and cfg.top_p == 1
    if cfg.order != 1 or not regime.name == "replace" or not plain or n > MAX_CHAIN:
        return {}
    p_V = zipf(cfg.vocab_size, cfg.zipf_exponent)
    survive_GV = survival_probability(p_V, n, generations)
    return {"support": survive_GV.sum(1), "missing_mass": (1 - survive_GV) @ p_V}
