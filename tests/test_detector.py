"""The curation detector (collapse.curation.classifier) and Drayson et al.'s importance resampling
(collapse.curation.detector).

Detector accuracies are balanced accuracies on held-out rows. Given the trained detector, held-out rows are
iid, so with n held-out rows per class the balanced accuracy of a detector that cannot tell the classes
apart has mean 1/2 and standard deviation at most 1/2 · sqrt(1/4n + 1/4n) (each class's accuracy a binomial
proportion, variance <= 1/4n): CHANCE_SD below. Checks allow Z = 4 of those (tests/helpers.py).
"""

import itertools

import jax
import numpy as np
import pytest

from collapse.data import GrammarConfig
from collapse.curation import classifier as C
from collapse.curation import detector as D
from collapse.data import grammar as G
from tests.helpers import Z, assert_mean

V, T, N = 16, 16, 400  # vocabulary, sequence length, rows per class
HOLDOUT = 0.5  # 200 held-out rows per class
CHANCE_SD = 0.5 * np.sqrt(2 * 0.25 / (HOLDOUT * N))


def _grammar(**kw) -> G.Grammar:
    return G.make_grammar(GrammarConfig(vocab_size=V, n_states=4, **kw))


def _tempered(g: G.Grammar, tau: float) -> G.Grammar:
    """The same language sampled at temperature tau: P(x|s) ∝ P(x|s)^(1/tau), a flatter, shifted distribution."""
    return G.Grammar(jax.nn.log_softmax(g.log_emit_SV / tau, axis=1), g.next_SV)


def _train(human_NT, synthetic_NT, key=0, **kw):
    return C.train(jax.random.key(key), human_NT, synthetic_NT, vocab_size=V, holdout=HOLDOUT, **kw)


# ------------------------------------------------------------------------------------------ detector


def test_detector_separates_shifted_synthetic_data():
    g = _grammar()
    human_NT = G.sample(g, jax.random.key(1), N, T)
    synthetic_NT = G.sample(_tempered(g, 2.0), jax.random.key(2), N, T)
    _, info = _train(human_NT, synthetic_NT)
    assert info["holdout_human"] == info["holdout_synthetic"] == HOLDOUT * N
    assert info["train_human"] == info["train_synthetic"] == N - HOLDOUT * N
    # Chance is rejected at Z standard errors; 0.8 guards against a detector that only barely learns.
    assert info["holdout_accuracy"] > 0.5 + Z * CHANCE_SD
    assert info["holdout_accuracy"] > 0.8, info


def test_detector_is_at_chance_when_both_classes_are_human():
    g = _grammar()
    human_NT = G.sample(g, jax.random.key(1), N, T)
    same_NT = G.sample(g, jax.random.key(2), N, T)
    _, info = _train(human_NT, same_NT)
    assert abs(info["holdout_accuracy"] - 0.5) <= Z * CHANCE_SD, info


def test_unbalanced_classes_are_weighted_equally():
    """Eight times more human rows than synthetic, both from the same language: the class-balanced loss fits
    the prior 1/2, so fresh sequences score near 1/2 on average; a loss weighting rows equally would fit
    the prior 1/9 and score them near 1/9 (checked by hand), below the lower bound here."""
    g = _grammar()
    human_NT = G.sample(g, jax.random.key(1), 8 * N, T)
    same_NT = G.sample(g, jax.random.key(2), N, T)
    det, info = _train(human_NT, same_NT)
    assert info["holdout_human"] == 4 * N and info["holdout_synthetic"] == N // 2
    fresh_NT = G.sample(g, jax.random.key(3), 1000, T)
    assert 0.25 < C.prob_synthetic(det, fresh_NT).mean() < 0.75


def test_prompt_positions_are_ignored():
    """Both classes continue the same human prompts; replacing the prompts by random tokens changes neither
    the trained detector nor any score (bit for bit), while a detector that reads them (prompt_tokens=0)
    does change: the check has teeth."""
    P = 6
    g = _grammar()
    prompts_NP = G.sample(g, jax.random.key(1), N, P)
    human_NT = np.concatenate([prompts_NP, G.extend(g, jax.random.key(2), prompts_NP, T - P)], axis=1)
    synthetic_NT = np.concatenate([prompts_NP, G.extend(_tempered(g, 2.0), jax.random.key(3), prompts_NP, T - P)],
                                  axis=1)
    altered_h, altered_s = human_NT.copy(), synthetic_NT.copy()
    rng = np.random.default_rng(0)
    altered_h[:, :P] = rng.integers(0, V, (N, P))
    altered_s[:, :P] = rng.integers(0, V, (N, P))

    det, info = _train(human_NT, synthetic_NT, prompt_tokens=P)
    det2, info2 = _train(altered_h, altered_s, prompt_tokens=P)
    assert info == info2
    jax.tree.map(np.testing.assert_array_equal, det, det2)
    np.testing.assert_array_equal(C.prob_synthetic(det, synthetic_NT, P), C.prob_synthetic(det, altered_s, P))
    assert info["holdout_accuracy"] > 0.5 + Z * CHANCE_SD

    reads_prompt, _ = _train(human_NT, synthetic_NT, prompt_tokens=0)
    assert not np.array_equal(C.prob_synthetic(reads_prompt, synthetic_NT), C.prob_synthetic(reads_prompt, altered_s))


def test_detector_is_reproducible_from_its_key():
    g = _grammar()
    human_NT = G.sample(g, jax.random.key(1), 100, T)
    synthetic_NT = G.sample(_tempered(g, 2.0), jax.random.key(2), 80, T)
    kw = dict(steps=50, d_embed=8)
    (a, info_a), (b, info_b) = _train(human_NT, synthetic_NT, 7, **kw), _train(human_NT, synthetic_NT, 7, **kw)
    assert info_a == info_b
    jax.tree.map(np.testing.assert_array_equal, a, b)
    c, _ = _train(human_NT, synthetic_NT, 8, **kw)
    assert not np.array_equal(a.w_D, c.w_D)


def test_prob_synthetic_in_chunks_matches_one_pass_and_hashed_bigrams_stay_in_range():
    det = C.init(jax.random.key(0), 300, 8, bigram_buckets=1024)  # 300^2 bigrams > 1024: hashed
    det = C.Detector(det.embed_VD, det.bigram_UD, jax.random.normal(jax.random.key(1), (8,)), det.b)
    tokens_NT = np.random.default_rng(0).integers(0, 300, (37, 12))
    ids = np.asarray(C.bigram_ids(tokens_NT[:, :-1], tokens_NT[:, 1:], 300, 1024))
    assert ids.min() >= 0 and ids.max() < 1024 and len(np.unique(ids)) > 200
    whole = C.prob_synthetic(det, tokens_NT, 2)
    assert whole.dtype == np.float64 and whole.shape == (37,)
    np.testing.assert_allclose(C.prob_synthetic(det, tokens_NT, 2, rows=5), whole, rtol=1e-6)
    with pytest.raises(ValueError, match="prompt_tokens"):
        C.prob_synthetic(det, tokens_NT, 12)


def test_calibrate_minimises_the_balanced_loss_and_never_inverts():
    """Platt scaling against a direct numerical minimisation of the class-balanced cross-entropy with Platt's
    smoothed targets (unequal class sizes, so the balanced and the plain optimum differ); an anti-correlated
    detector gets a = 0, c = 0; perfectly separated held-out rows get a finite scale."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    z_h, z_s = rng.normal(-0.5, 1.0, 300), rng.normal(0.8, 1.5, 90)
    t_h, t_s = 1 / (len(z_h) + 2), (len(z_s) + 1) / (len(z_s) + 2)

    def loss(theta):
        a, c = theta
        xent = lambda x, t: t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)  # noqa: E731
        return 0.5 * (xent(a * z_h + c, t_h).mean() + xent(a * z_s + c, t_s).mean())

    expected = minimize(loss, [1.0, 0.0], method="Nelder-Mead", options=dict(xatol=1e-10, fatol=1e-14)).x
    np.testing.assert_allclose(C.calibrate(z_h, z_s), expected, atol=1e-6)
    assert C.calibrate(z_s, z_h) == (0.0, 0.0)
    a, c = C.calibrate(np.array([-2.0, -1.5, -1.0]), np.array([1.0, 3.0]))  # separable: a bounded fit
    assert 0 < a < 10 and np.isfinite(c)


def test_a_detector_no_better_than_chance_scores_every_row_one_half():
    """Both classes from the truth: the held-out rank test does not reject chance (here p > 0.01), so the
    detector scores exactly 1/2; a separable pair passes the test and keeps its calibrated scores."""
    g = _grammar()
    human_NT, same_NT = G.sample(g, jax.random.key(1), N, T), G.sample(g, jax.random.key(2), N, T)
    det, info = _train(human_NT, same_NT)
    assert info["chance_p_value"] > 0.01 and not info["used"]
    np.testing.assert_array_equal(C.prob_synthetic(det, G.sample(g, jax.random.key(3), 50, T)), 0.5)
    det, info = _train(human_NT, G.sample(_tempered(g, 2.0), jax.random.key(2), N, T))
    assert info["chance_p_value"] < 1e-6 and info["used"] and info["calibration_scale"] > 0


def _kept_distinct_uniform(M: int, n: int, max_repeats: int) -> float:
    """P(a candidate is kept at least once) when n of its M · max_repeats entries are drawn uniformly without
    replacement (the resampling with equal weights)."""
    E = M * max_repeats
    return 1 - np.prod([(E - n - k) / (E - k) for k in range(max_repeats)])


def test_detector_curation_is_uniform_under_the_null():
    """The null test of curate=detector: candidates drawn from the truth itself (a perfect generator) against
    human data from the truth. The scores must read 1/2 and the kept set must be as distinct as uniform
    resampling makes it: the count of distinct kept candidates within Z binomial standard deviations of
    M · q (the indicators "kept" are negatively associated, so the binomial variance bounds theirs). The mean
    score: Platt scaling's intercept makes the class-balanced mean of the held-out scores exactly 1/2, so on
    fresh candidates it differs from 1/2 by the held-out means' sampling error, sd(p) · sqrt(1/n_h + 1/n_s) / 2
    (0 when the chance test fails and every score is 1/2). Before calibration and the chance test the scores
    spread over 0.002-0.98 (mean ~0.22) and only ~43 % of kept rows were distinct against ~58 % uniformly."""
    from collapse.curation import DetectorCurateConfig

    c = DetectorCurateConfig()
    g = _grammar()
    n = 2 * N
    M = D.n_candidates(n, c.upsample)
    q = _kept_distinct_uniform(M, n, c.max_repeats)
    for seed in range(3):
        human_NT = G.sample(g, jax.random.key(10 + seed), n, T)
        candidates_MT = G.sample(g, jax.random.key(20 + seed), M, T)
        p_M, _, _ = C.cross_fitted(jax.random.key(seed), human_NT, candidates_MT, vocab_size=V, steps=c.steps,
                                   lr=c.lr, d_embed=c.d_embed, holdout=c.holdout, significance=c.significance)
        n_h, n_s = round(c.holdout * n), round(c.holdout * (M - M // 2))
        bound = Z * p_M.std() * (np.sqrt(1 / n_h + 1 / n_s) / 2 + 1 / np.sqrt(M))
        assert abs(p_M.mean() - 0.5) <= bound, (p_M.mean(), bound)
        kept_n = D.resample(np.random.default_rng(seed), D.importance_weights(p_M, c.bias), n, c.max_repeats)
        distinct = len(np.unique(kept_n))
        assert abs(distinct - M * q) <= Z * np.sqrt(M * q * (1 - q)), (distinct, M * q)
        assert c.ess(p_M) > 0.9


# ----------------------------------------------------------------------------------------- resampling


def test_importance_weights_follow_the_formula():
    p_M = np.array([0.0, 0.5, 0.9, 1.0, 0.25])
    expected_M = [1.0, 2.0**-10, 0.1**10, 0.0, 0.75**10]  # 1 - 0.9 is 0.1 only up to float64 rounding
    np.testing.assert_allclose(D.importance_weights(p_M, 10), expected_M, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(D.importance_weights(p_M, 0), np.ones(5))
    with pytest.raises(ValueError):
        D.importance_weights([0.5, 1.5], 10)


def test_n_candidates():
    assert D.n_candidates(300, 1.5) == 200
    assert D.n_candidates(10, 3) == 4
    assert D.n_candidates(7, 1.0) == 7


def test_resample_keeps_n_at_most_max_repeats_each_and_never_zero_weights():
    rng = np.random.default_rng(0)
    w_M = D.importance_weights(np.array([0.1, 0.99, 1.0, 0.3, 0.6, 1.0, 0.05]), 10)
    for _ in range(200):
        index_n = D.resample(rng, w_M, 12, 3)
        assert index_n.shape == (12,)
        counts_M = np.bincount(index_n, minlength=7)
        assert counts_M.max() <= 3 and counts_M[[2, 5]].sum() == 0


def test_resample_refuses_impossible_budgets():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="max_repeats"):
        D.resample(rng, np.ones(3), 10, 3)  # 3 candidates × 3 < 10
    with pytest.raises(ValueError, match="nonzero weight"):
        D.resample(rng, np.zeros(5), 2, 3)
    with pytest.raises(ValueError, match="nonzero weight"):
        D.resample(rng, np.array([1.0, 0, 0, 0]), 4, 3)  # one usable candidate × 3 < 4


def test_resample_is_reproducible_from_its_generator():
    w_M = np.linspace(0.1, 1, 20)
    a = D.resample(np.random.default_rng(5), w_M, 25, 3)
    np.testing.assert_array_equal(a, D.resample(np.random.default_rng(5), w_M, 25, 3))
    assert not np.array_equal(a, D.resample(np.random.default_rng(6), w_M, 25, 3))


def _successive_sampling_counts(w_M: np.ndarray, n: int, max_repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact E[count] and E[count^2] per candidate: every ordered draw of n distinct expanded entries, each
    picked with probability ∝ weight among the entries still there (what choice(replace=False, p) does)."""
    expanded_E = np.repeat(np.arange(len(w_M)), max_repeats)
    w_E = w_M[expanded_E]
    mean_M, square_M = np.zeros(len(w_M)), np.zeros(len(w_M))
    for draw in itertools.permutations(range(len(expanded_E)), n):
        prob, left = 1.0, w_E.sum()
        for e in draw:
            prob *= w_E[e] / left
            left -= w_E[e]
        counts_M = np.bincount(expanded_E[list(draw)], minlength=len(w_M))
        mean_M += prob * counts_M
        square_M += prob * counts_M**2
    return mean_M, square_M


def test_resample_frequencies_match_exact_successive_sampling():
    """A case small enough to enumerate: 3 candidates, max_repeats 2, keep 3 (120 ordered draws)."""
    w_M = D.importance_weights(np.array([0.1, 0.5, 0.8]), 2)
    mean_M, square_M = _successive_sampling_counts(w_M, 3, 2)
    assert mean_M.sum() == pytest.approx(3)
    rng = np.random.default_rng(1)
    counts_KM = np.array([np.bincount(D.resample(rng, w_M, 3, 2), minlength=3) for _ in range(4000)])
    for m in range(3):
        assert_mean(counts_KM[:, m], mean_M[m], np.sqrt(square_M[m] - mean_M[m] ** 2), f"count of candidate {m}")


def test_resample_with_many_repeats_draws_proportional_to_weight():
    """max_repeats >> n: removing a few entries hardly changes the weights, so the counts are multinomial(n,
    w / Σw) up to O(n / max_repeats)."""
    w_M = np.array([1.0, 2.0, 3.0, 4.0])
    n, K = 8, 2000
    rng = np.random.default_rng(2)
    counts_KM = np.array([np.bincount(D.resample(rng, w_M, n, 1000), minlength=4) for _ in range(K)])
    pi_M = w_M / w_M.sum()
    for m in range(4):
        assert_mean(counts_KM[:, m], n * pi_M[m], np.sqrt(n * pi_M[m] * (1 - pi_M[m])), f"count of candidate {m}")


def test_resample_favours_human_like_candidates():
    """The paper's setting (bias 10, max_repeats 3, upsample 1.5): the mean count falls as p_synthetic rises."""
    p_M = np.linspace(0.0, 0.6, 8)
    n = round(1.5 * len(p_M))
    rng = np.random.default_rng(3)
    w_M = D.importance_weights(p_M, 10)
    mean_M = np.mean([np.bincount(D.resample(rng, w_M, n, 3), minlength=8) for _ in range(2000)], axis=0)
    assert mean_M[0] == pytest.approx(3, abs=0.05) and mean_M.max() <= 3
    assert np.all(np.diff(mean_M) < 0), mean_M
