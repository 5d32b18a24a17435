import math

import numpy as np
import pytest

from collapse.metrics import perplexity


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    V, T = 50, 8
    logprob = np.full(10, T * -math.log(V))
    assert perplexity.perplexity(logprob, T) == pytest.approx(V)
    assert perplexity.nll_per_token(logprob, T) == pytest.approx(math.log(V))


def test_kl_estimator_is_zero_for_the_true_model_and_the_log_ratio_otherwise():
    true_lp = np.array([-3.0, -5.0, -4.0])
    assert perplexity.kl_true_to_model(true_lp, true_lp, 4) == 0.0
    assert perplexity.kl_true_to_model(true_lp, true_lp - 2.0, 4) == pytest.approx(0.5)


def test_per_sequence_summary_by_hand():
    T = 5
    ppl = np.array([4.0, 2.0, 16.0, 8.0])
    s = perplexity.perplexity_summary(-T * np.log(ppl), T, "p")
    assert s["p"] == pytest.approx(2 ** 2.5)  # the geometric mean (2 * 4 * 8 * 16) ** (1/4)
    assert s["p_mean"] == pytest.approx(7.5)
    assert s["p_median"] == pytest.approx(6.0)
    # linear interpolation between order statistics at (N - 1) q: 0.3 -> 2 + 0.3 * 2, 2.7 -> 8 + 0.7 * 8 ...
    assert (s["p_p10"], s["p_p90"], s["p_p99"]) == pytest.approx((2.6, 13.6, 15.76))


def test_corpus_perplexity_is_the_geometric_mean_of_sequence_perplexities():
    lp = np.random.default_rng(0).normal(-40, 5, 100)
    seq = perplexity.sequence_perplexity(lp, 16)
    assert math.log(perplexity.perplexity(lp, 16)) == pytest.approx(np.log(seq).mean())
