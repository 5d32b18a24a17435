"""The categorical family against closed-form theory: one-generation loss (1 - p)^n, Wright-Fisher survival
(and Suresh et al. 2024's bound), tail cutting and narrowing (Dohmatob et al. 2024). Tolerances come from
the number of replicates (tests/helpers.py: 4 standard errors, or a Bonferroni bound where many are tested)."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from collapse.config import Config
from collapse.families import CategoricalConfig
from collapse.regimes import AccumulateConfig, ReplaceConfig
from collapse.families import analytic, categorical
from tests.helpers import assert_mean

V, M, R, G = 200, 200, 2000, 20  # unigram, n = 200 tokens a generation


@pytest.fixture(scope="module")
def unigram():
    cfg = Config(model=CategoricalConfig(vocab_size=V, samples=M), generations=G, replicates=R, compilation_cache="")
    sim = analytic.simulate(cfg, snapshots=range(G))
    return sim.metrics, sim.params["counts_CV"][:, :, 0] > 0  # present [G, R, V]


def test_number_lost_in_one_generation(unigram):
    # Generation 0 fits n human tokens: the number of absent symbols has the exact mean Σ (1 - p_i)^n and
    # variance of `lost_moments`; it is a sum of 200 weakly dependent indicators (near normal), averaged
    # over 2000 replicates.
    metrics, _ = unigram
    mean, var = categorical.lost_moments(categorical.zipf(V, 1.1), M)
    assert_mean(V - metrics["support"][0], mean, np.sqrt(var), "symbols lost in generation 0")


def test_each_symbol_is_lost_with_probability_one_minus_p_to_the_n(unigram):
    # Per symbol, the fraction of replicates that lost it is Binomial(R, q)/R, q = (1 - p)^n. Symbols with
    # 0.05 <= q <= 0.95 (where the check has power); Bonferroni over them for a family-wise false alarm 1e-4.
    _, present = unigram
    q = categorical.loss_probability(categorical.zipf(V, 1.1), M)
    checked = np.flatnonzero((q >= 0.05) & (q <= 0.95))
    z = norm.isf(1e-4 / (2 * len(checked)))
    lost = 1 - present[0].mean(0)
    bound = z * np.sqrt(q * (1 - q) / R)
    bad = checked[np.abs(lost[checked] - q[checked]) > bound[checked]]
    assert len(checked) > 100 and bad.size == 0, f"symbols {bad}: lost {lost[bad]} vs (1 - p)^n {q[bad]}"


def test_survival_follows_the_wright_fisher_chain_and_the_suresh_bound(unigram):
    # Under replace a symbol's count is Binomial(n, p) after the first fit, then c' ~ Binomial(n, c/n); the
    # exact survival probability after k fits is a matrix power. Fractions of 2000 replicates, Bonferroni
    # over the 12 (symbol, generation) pairs for a family-wise false alarm 1e-4.
    _, present = unigram
    p = categorical.zipf(V, 1.1)
    pairs = [(rank, g) for rank in (10, 20, 30, 60) for g in (1, 5, 19)]
    z = norm.isf(1e-4 / (2 * len(pairs)))
    for rank, g in pairs:
        exact = categorical.survival_probability(p[rank - 1], M, G)
        assert np.all(exact >= categorical.suresh_bound(p[rank - 1], M, G))
        s = exact[g]
        frac = present[g, :, rank - 1].mean()
        assert abs(frac - s) <= z * np.sqrt(s * (1 - s) / R), f"rank {rank}, generation {g}: {frac} vs {s}"
    # once lost, never back
    assert not np.any(present[1:] & ~present[:-1])


def test_theory_gives_the_expected_support_and_missing_mass_of_the_chain(unigram):
    # The report's closed forms: E[support_g] = Σ_i Pr[i survives g + 1 fits], E[missing_mass_g] = Σ_i p_i
    # Pr[i is lost], the chain run for every symbol at once; against the simulation (sample sd) at a few g.
    metrics, _ = unigram
    p = categorical.zipf(V, 1.1)
    theory = categorical.theory(CategoricalConfig(vocab_size=V, samples=M), ReplaceConfig(), G)
    one_by_one = np.stack([categorical.survival_probability(pi, M, G) for pi in p[:5]], 1)
    np.testing.assert_allclose(categorical.survival_probability(p[:5], M, G), one_by_one, rtol=1e-12)
    for g in (0, 5, 19):
        for name in ("support", "missing_mass"):
            values = metrics[name][g]
            assert_mean(values, theory[name][g], values.std(ddof=1), f"{name} at generation {g}")
    assert categorical.theory(CategoricalConfig(temperature=0.9), ReplaceConfig(), G) == {}  # no exact form
    assert categorical.theory(CategoricalConfig(), AccumulateConfig(), G) == {}


def test_temperature_narrows_the_tail_and_top_k_top_p_cut_it():
    p_1V = jnp.asarray(categorical.zipf(50, 1.2), jnp.float32)[None]
    cold = CategoricalConfig(vocab_size=50, temperature=0.5)
    np.testing.assert_allclose(categorical.transform(cold, p_1V)[0], categorical.zipf(50, 2.4), rtol=1e-5)
    assert int((categorical.transform(CategoricalConfig(vocab_size=50, top_k=7), p_1V) > 0).sum()) == 7
    for top_p in (0.3, 0.5, 0.9):
        q = categorical.transform(CategoricalConfig(vocab_size=50, top_p=top_p), p_1V)[0]
        keep = int(np.searchsorted(np.cumsum(categorical.zipf(50, 1.2)), top_p) + 1)  # smallest nucleus >= top_p
        assert int((q > 0).sum()) == keep
        np.testing.assert_allclose(q[:keep], p_1V[0, :keep] / p_1V[0, :keep].sum(), rtol=1e-5)
    greedy = categorical.transform(CategoricalConfig(vocab_size=50, temperature=0), p_1V)
    assert greedy[0, 0] == 1 and greedy.sum() == 1


def test_tail_curve_and_effective_exponent():
    cfg = CategoricalConfig(vocab_size=100, zipf_exponent=1.1, temperature=0.8, top_k=40)
    support, exponent = categorical.tail_curve(cfg, 5)
    assert list(support) == [100, 40, 40, 40, 40]
    np.testing.assert_allclose(exponent, 1.1 / 0.8 ** np.arange(5))
    f = jnp.asarray(categorical.zipf(100, 1.7), jnp.float32)
    assert float(-categorical.zipf_slope(f, jnp.ones(100, bool))) == pytest.approx(1.7, rel=1e-5)


def test_top_k_of_the_whole_vocabulary_and_top_p_one_cut_nothing():
    # At τ = 0.3 the float32 cumulative mass of Zipf(1.1/0.3) rounds to 1 well before rank 1000; top_p = 1
    # must still keep every symbol, so top_k = V is top-k off, to the bit.
    p_1V = jnp.asarray(categorical.zipf(1000, 1.1), jnp.float32)[None]
    off = categorical.transform(CategoricalConfig(vocab_size=1000, temperature=0.3), p_1V)
    whole = categorical.transform(CategoricalConfig(vocab_size=1000, temperature=0.3, top_k=1000), p_1V)
    np.testing.assert_array_equal(whole, off)
    assert int((off > 0).sum()) == 1000
    half = categorical.transform(CategoricalConfig(vocab_size=1000, temperature=0.3, top_k=500), p_1V)
    assert int((half > 0).sum()) == 500


def test_tail_curve_keeps_the_top_k_support_under_temperature():
    # Zipf(β/τ^g) keeps every probability positive, so top-k alone sets the support: k for every g >= 1,
    # even once the tail's probabilities underflow float32 (τ = 0.5: by g = 7 the exponent is 141).
    cfg = CategoricalConfig(vocab_size=1000, zipf_exponent=1.1, temperature=0.5, top_k=500)
    support, _ = categorical.tail_curve(cfg, 10)
    assert list(support) == [1000] + [500] * 9
    support, _ = categorical.tail_curve(CategoricalConfig(vocab_size=1000, temperature=0.3), 10)
    assert list(support) == [1000] * 10


def test_bigram_counts_contexts_from_bos():
    cfg = CategoricalConfig(vocab_size=3, order=2, seq_len=3)
    counts = categorical.stats(cfg, jnp.array([[1, 2, 1]]), jnp.ones(1)).counts_CV
    expected = np.zeros((4, 3))
    expected[3, 1] = expected[1, 2] = expected[2, 1] = 1  # BOS→1, 1→2, 2→1
    np.testing.assert_array_equal(counts, expected)
    probs = categorical.probabilities(categorical.Params(jnp.asarray(expected), jnp.asarray(3.0)))
    np.testing.assert_allclose(probs[0], [0, 2 / 3, 1 / 3])  # context 0 never seen: the token frequencies


def test_bigram_truth_marginal_matches_its_samples():
    # Per-sequence counts of each symbol are independent across sequences with mean seq_len · marginal;
    # their sample standard deviation sets the bound, Bonferroni over the V symbols (family-wise 1e-4).
    model = CategoricalConfig(vocab_size=10, order=2, seq_len=8, samples=20000, zipf_exponent=1.0)
    tokens = np.asarray(analytic.human_data(Config(model=model, replicates=1))[0])
    per_seq = (tokens[:, :, None] == np.arange(10)).sum(1)
    marginal = np.asarray(categorical.truth(model).marginal_V)
    z = norm.isf(1e-4 / 20)
    for i in range(10):
        assert_mean(per_seq[:, i], 8 * marginal[i], per_seq[:, i].std(), f"symbol {i}", z=z)
