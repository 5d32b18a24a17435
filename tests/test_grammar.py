"""The ground-truth language: exact quantities against brute force, sampling against the exact quantities.

Statistical checks use bounds derived from the sample size at a stated false-alarm rate ALPHA (normal
approximation, Bonferroni over the checks in one assertion); the samples come from a fixed key, so each
test is deterministic, and ALPHA says how unlikely a correct implementation is to trip it on a new key.
"""

import itertools
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse.data import GrammarConfig
from collapse.data import grammar as G

ALPHA = 1e-3


def _z(alpha: float) -> float:
    """Two-sided normal quantile: |Z| > _z(alpha) with probability alpha."""
    return statistics.NormalDist().inv_cdf(1 - alpha / 2)


def _grammar(**kw) -> G.Grammar:
    return G.make_grammar(GrammarConfig(**kw))


def _enumerate(g: G.Grammar, T: int) -> tuple[np.ndarray, np.ndarray]:
    """All V^T sequences `[V^T, T]` and their log-probabilities (float64 of log_prob's float32)."""
    tokens_NT = np.array(list(itertools.product(range(g.vocab_size), repeat=T)), np.int32)
    return tokens_NT, np.asarray(G.log_prob(g, tokens_NT), np.float64)


def _emission_entropy(g: G.Grammar) -> np.ndarray:
    p_SV = np.exp(np.asarray(g.log_emit_SV, np.float64))
    p_SV /= p_SV.sum(axis=1, keepdims=True)
    return -(p_SV * np.log(p_SV)).sum(axis=1), p_SV


# --------------------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("V,S,T,seed", [(3, 3, 4, 0), (4, 2, 5, 1), (2, 5, 7, 2)])
def test_enumeration_matches_exact_quantities(V, S, T, seed):
    g = _grammar(vocab_size=V, n_states=S, language_seed=seed)
    tokens_NT, lp_N = _enumerate(g, T)
    p_N = np.exp(lp_N)
    # Tolerances: float32 log-probs (relative error ~1e-7 per token), everything else float64.
    assert p_N.sum() == pytest.approx(1.0, abs=1e-5)
    assert -(p_N * lp_N).sum() / T == pytest.approx(G.block_entropy(g, T), abs=1e-5)
    counts_NV = (tokens_NT[:, :, None] == np.arange(V)).sum(axis=1)
    np.testing.assert_allclose(p_N @ counts_NV / T, G.unigram(g, T), atol=1e-6)
    assert G.unigram(g, T).sum() == pytest.approx(1.0, abs=1e-12)


def test_log_prob_matches_python_loop():
    g = _grammar(vocab_size=50, n_states=7, language_seed=3)
    log_emit_SV, next_SV = np.asarray(g.log_emit_SV, np.float64), np.asarray(g.next_SV)
    tokens_NT = np.random.default_rng(0).integers(0, 50, size=(5, 20))
    expected = []
    for seq in tokens_NT:
        state, total = 0, 0.0
        for x in seq:
            total += log_emit_SV[state, x]
            state = next_SV[state, x]
        expected.append(total)
    got = G.log_prob(g, jnp.asarray(tokens_NT))
    assert got.dtype == jnp.float32 and got.shape == (5,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_log_prob_of_out_of_vocabulary_token_is_minus_inf():
    g = _grammar(vocab_size=5, n_states=3)
    lp = np.asarray(G.log_prob(g, jnp.array([[0, 1, 2], [0, -1, 2], [0, 5, 2]])))
    assert np.isfinite(lp[0]) and lp[1] == -np.inf and lp[2] == -np.inf


# ------------------------------------------------------------------------------------------ entropy


def test_block_entropy_converges_to_entropy_rate():
    g = _grammar(vocab_size=40, n_states=6, language_seed=4)
    h = G.entropy_rate(g)
    gaps = [abs(G.block_entropy(g, T) - h) for T in (1, 8, 64, 512)]
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    # T * (H_T/T - h) = sum_{t<T} (P(S_t) - pi) . H(P(.|s)) converges geometrically to a constant: the O(1/T) law.
    k1, k2 = (T * (G.block_entropy(g, T) - h) for T in (2048, 4096))
    assert k1 == pytest.approx(k2, abs=1e-8)
    u1, u2 = (T * (G.unigram(g, T) - G.stationary_unigram(g)) for T in (2048, 4096))  # the same law for unigrams
    np.testing.assert_allclose(u1, u2, atol=1e-8)


def test_one_state_language_is_iid():
    g = _grammar(vocab_size=30, n_states=1)
    h_S, p_SV = _emission_entropy(g)
    for T in (1, 5, 64):
        assert G.block_entropy(g, T) == pytest.approx(h_S[0], abs=1e-12)
        np.testing.assert_allclose(G.unigram(g, T), p_SV[0], atol=1e-12)
    assert G.entropy_rate(g) == pytest.approx(h_S[0], abs=1e-12)
    np.testing.assert_allclose(G.stationary_unigram(g), p_SV[0], atol=1e-12)


def _handmade(next_SV: list[list[int]], seed: int = 0) -> G.Grammar:
    S, V = np.shape(next_SV)
    logits_SV = np.random.default_rng(seed).standard_normal((S, V))
    return G.Grammar(jax.nn.log_softmax(jnp.asarray(logits_SV, jnp.float32)), jnp.asarray(next_SV, jnp.int32))


def test_stationary_of_periodic_chain_is_cesaro_average():
    g = _handmade([[1, 1, 1, 1], [2, 2, 2, 2], [0, 0, 0, 0]])  # 0 -> 1 -> 2 -> 0: period 3
    h_S, p_SV = _emission_entropy(g)
    assert G.entropy_rate(g) == pytest.approx(h_S.mean(), abs=1e-12)
    np.testing.assert_allclose(G.stationary_unigram(g), p_SV.mean(axis=0), atol=1e-12)
    assert G.block_entropy(g, 30) == pytest.approx(h_S.mean(), abs=1e-12)


def test_stationary_of_reducible_chain_weights_closed_classes_from_state_0():
    g = _handmade([[1, 2], [1, 1], [2, 2]])  # state 0 -> absorbing 1 (token 0) or absorbing 2 (token 1)
    h_S, p_SV = _emission_entropy(g)
    a = p_SV[0]  # probability of ending in state 1, 2
    assert G.entropy_rate(g) == pytest.approx(a @ h_S[1:], abs=1e-12)
    np.testing.assert_allclose(G.stationary_unigram(g), a @ p_SV[1:], atol=1e-12)


def test_stationary_of_default_language_is_invariant():
    g = _grammar()
    _, trans_SS, _ = G._tables(g)
    pi = G._stationary(trans_SS)
    assert pi.sum() == pytest.approx(1.0, abs=1e-12) and (pi >= 0).all()
    np.testing.assert_allclose(pi @ trans_SS, pi, atol=1e-12)


# ----------------------------------------------------------------------------------------- sampling


def test_samples_match_exact_marginals_and_entropy():
    V, S, T, N = 5, 3, 6, 20_000
    g = _grammar(vocab_size=V, n_states=S, language_seed=5)
    tokens_NT = np.asarray(G.sample(g, jax.random.key(0), N, T))
    assert tokens_NT.shape == (N, T) and tokens_NT.dtype == np.int32
    assert tokens_NT.min() >= 0 and tokens_NT.max() < V

    # Exact marginal at position t (1-based): t * unigram(t) - (t - 1) * unigram(t - 1).
    cum_TV = np.array([t * G.unigram(g, t) for t in range(1, T + 1)])
    p_TV = np.diff(cum_TV, axis=0, prepend=0.0)
    assert (N * p_TV).min() > 50  # the normal approximation to each binomial count is sound
    se_TV = np.sqrt(p_TV * (1 - p_TV) / N)  # tokens at one position are iid across sequences
    freq_TV = (tokens_NT[:, :, None] == np.arange(V)).mean(axis=0)
    assert (np.abs(freq_TV - p_TV) <= _z(ALPHA / (T * V)) * se_TV).all()

    # Position-averaged frequencies: sd of a mean of dependent indicators <= mean of their sds.
    freq_V = freq_TV.mean(axis=0)
    assert (np.abs(freq_V - G.unigram(g, T)) <= _z(ALPHA / V) * se_TV.mean(axis=0)).all()

    # Per-token negative log-likelihood: mean block_entropy, exact variance from enumerating all V^T sequences.
    _, lp_all = _enumerate(g, T)
    var = (np.exp(lp_all) * (-lp_all / T - G.block_entropy(g, T)) ** 2).sum()
    nll = -np.asarray(G.log_prob(g, tokens_NT), np.float64).mean() / T
    assert abs(nll - G.block_entropy(g, T)) <= _z(ALPHA) * np.sqrt(var / N)


# -------------------------------------------------------------------------------------- determinism


def test_same_seed_same_language_and_same_key_same_samples():
    a, b, c = _grammar(language_seed=7), _grammar(language_seed=7), _grammar(language_seed=8)
    assert a.log_emit_SV.dtype == jnp.float32 and a.next_SV.dtype == jnp.int32
    assert (a.n_states, a.vocab_size) == (32, 512)
    np.testing.assert_array_equal(a.log_emit_SV, b.log_emit_SV)
    np.testing.assert_array_equal(a.next_SV, b.next_SV)
    assert not np.array_equal(a.log_emit_SV, c.log_emit_SV) and not np.array_equal(a.next_SV, c.next_SV)
    s1, s2 = (G.sample(a, jax.random.key(1), 8, 16) for _ in range(2))
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, G.sample(a, jax.random.key(2), 8, 16))


# ---------------------------------------------------------------------------------------- heavy tail


@pytest.mark.parametrize("exponent", [0.8, 1.1, 1.5])
def test_stationary_unigram_is_zipfian(exponent):
    """Sorted descending, the stationary unigram has log-log slope ~ -exponent over the top half of ranks.

    u_x = (x+1)^-a * m_x with m_x a mixture of iid jitters, so #{x : u_x > t} ~ E[m^(1/a)] t^(-1/a): sorting
    keeps the exponent a and only shifts the constant. Near rank V the tokens run out and the sorted curve
    bends down, so the fit stops at V/2. Finite V and the saturation of the head (a state's share of its
    top token cannot exceed 1) leave a bias and a seed-to-seed spread: over language seeds 0..19 the slope
    deviates from -a by 2-3% on average, at most 8%; hence the 10% band. A flat language (a=0) gives about
    -0.46, so the band does discriminate.
    """
    u = np.sort(G.stationary_unigram(_grammar(zipf_exponent=exponent)))[::-1]
    assert u.sum() == pytest.approx(1.0, abs=1e-12)
    half = len(u) // 2
    slope = np.polyfit(np.log(np.arange(1, half + 1)), np.log(u[:half]), 1)[0]
    assert abs(slope + exponent) <= 0.1 * exponent, slope


def test_unigram_of_later_positions_averages_their_exact_marginals():
    """`unigram(g, T, first)` is the mean of the exact marginals at positions first+1..T (continuations)."""
    g = _grammar(vocab_size=7, n_states=3, language_seed=2)
    T, P = 9, 4
    cum_TV = np.array([t * G.unigram(g, t) for t in range(1, T + 1)])
    p_TV = np.diff(cum_TV, axis=0, prepend=0.0)  # the marginal at each position
    np.testing.assert_allclose(G.unigram(g, T, P), p_TV[P:].mean(axis=0), atol=1e-12)
    assert not np.allclose(G.unigram(g, T, P), G.unigram(g, T))  # the start state shows in early positions


def test_extend_continues_from_the_state_the_prefix_reaches():
    """The first continued token follows P(. | state after the prefix); empty prefixes are `sample`."""
    g = _grammar(vocab_size=6, n_states=3, language_seed=4, transitions="state_token")
    prefix = np.array([2, 5, 1], np.int32)
    state = 0
    for x in prefix:
        state = int(g.next_SV[state, x])
    N = 20_000
    new_NX = np.asarray(G.extend(g, jax.random.key(1), np.tile(prefix, (N, 1)), 2))
    p_V = np.exp(np.asarray(g.log_emit_SV[state], np.float64))
    freq_V = np.bincount(new_NX[:, 0], minlength=6) / N
    assert (np.abs(freq_V - p_V) <= _z(ALPHA / 6) * np.sqrt(p_V * (1 - p_V) / N)).all()
    np.testing.assert_array_equal(G.extend(g, jax.random.key(2), np.zeros((5, 0), np.int32), 4),
                                  G.sample(g, jax.random.key(2), 5, 4))
