import math

import numpy as np
import pytest

from collapse.metrics import diversity, perplexity


def test_distinct_n_by_hand():
    tokens = np.array([[1, 2, 1, 2], [1, 2, 3, 3]])
    # unigrams: 8 tokens, types {1,2,3}; bigrams (within rows): 12 21 12 | 12 23 33 → 6 total, 4 distinct
    assert diversity.distinct_n(tokens, 1, 4) == pytest.approx(3 / 8)
    assert diversity.distinct_n(tokens, 2, 4) == pytest.approx(4 / 6)
    assert diversity.distinct_n(tokens, 4, 4) == pytest.approx(1.0)
    assert diversity.distinct_n(tokens, 5, 4) == 0.0


def test_packed_and_row_wise_ngram_ids_agree():
    tokens = np.random.default_rng(0).integers(0, 5, (20, 12))
    for n in (1, 2, 3):
        packed = diversity.ngram_ids(tokens, n, 5)
        rowwise = diversity.ngram_ids(tokens, n, 2**40)  # too large to pack: falls back to unique rows
        assert len(np.unique(packed)) == len(np.unique(rowwise))
        # same partition of positions into equal n-grams
        assert (np.unique(packed, return_inverse=True)[1] == np.unique(rowwise, return_inverse=True)[1]).all()


def test_unigram_entropy_bits():
    assert diversity.unigram_entropy_bits(np.array([[0, 1, 2, 3]]), 8) == pytest.approx(2.0)
    assert diversity.unigram_entropy_bits(np.array([[5, 5, 5]]), 8) == pytest.approx(0.0)
    p = np.array([0.5, 0.25, 0.25])
    tokens = np.array([[0, 0, 1, 2]])
    assert diversity.unigram_entropy_bits(tokens, 3) == pytest.approx(-(p * np.log2(p)).sum())


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    V, T = 50, 8
    logprob = np.full(10, T * -math.log(V))
    assert perplexity.perplexity(logprob, T) == pytest.approx(V)
    assert perplexity.nll_per_token(logprob, T) == pytest.approx(math.log(V))


def test_kl_estimator_is_zero_for_the_true_model_and_the_log_ratio_otherwise():
    true_lp = np.array([-3.0, -5.0, -4.0])
    assert perplexity.kl_true_to_model(true_lp, true_lp, 4) == 0.0
    assert perplexity.kl_true_to_model(true_lp, true_lp - 2.0, 4) == pytest.approx(0.5)
