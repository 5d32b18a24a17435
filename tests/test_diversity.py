import gzip
import math

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.util import ngrams as nltk_ngrams

from collapse.metrics import diversity


def test_distinct_n_by_hand():
    tokens = np.array([[1, 2, 1, 2], [1, 2, 3, 3]])
    # unigrams: 8 tokens, types {1,2,3}; bigrams (within rows): 12 21 12 | 12 23 33 → 6 total, 4 distinct
    assert diversity.distinct_n(tokens, 1, 4) == pytest.approx(3 / 8)
    assert diversity.distinct_n(tokens, 2, 4) == pytest.approx(4 / 6)
    assert diversity.distinct_n(tokens, 4, 4) == pytest.approx(1.0)
    assert np.isnan(diversity.distinct_n(tokens, 5, 4))  # no 5-gram: undefined, not "no diversity"


@pytest.mark.parametrize("V,N,T", [(3, 20, 8), (50, 30, 12), (2**40, 10, 6)])
def test_distinct_n_matches_nltk_ngrams(V, N, T):
    tokens = np.random.default_rng(V % 97).integers(0, min(V, 1000), (N, T))
    for n in (1, 2, 3, 4):
        grams = [g for row in tokens.tolist() for g in nltk_ngrams(row, n)]
        assert diversity.distinct_n(tokens, n, V) == pytest.approx(len(set(grams)) / len(grams))


def test_packed_and_row_wise_ngram_ids_agree():
    tokens = np.random.default_rng(0).integers(0, 5, (20, 12))
    for n in (1, 2, 3):
        packed = diversity.ngram_ids(tokens, n, 5)
        rowwise = diversity.ngram_ids(tokens, n, 2**40)  # too large to pack: falls back to unique rows
        assert len(np.unique(packed)) == len(np.unique(rowwise))
        # same partition of positions into equal n-grams
        assert (np.unique(packed, return_inverse=True)[1] == np.unique(rowwise, return_inverse=True)[1]).all()


def test_entropies_by_hand():
    assert diversity.unigram_entropy_bits(np.array([[0, 1, 2, 3]]), 8) == pytest.approx(2.0)
    assert diversity.unigram_entropy_bits(np.array([[5, 5, 5]]), 8) == pytest.approx(0.0)
    p = np.array([0.5, 0.25, 0.25])
    assert diversity.unigram_entropy_bits(np.array([[0, 0, 1, 2]]), 3) == pytest.approx(-(p * np.log2(p)).sum())
    # bigrams 01 10 01 | 22 22 22: {01: 2, 10: 1, 22: 3}
    q = np.array([2, 1, 3]) / 6
    assert diversity.ngram_entropy_bits(np.array([[0, 1, 0, 1], [2, 2, 2, 2]]), 2, 3) == \
        pytest.approx(-(q * np.log2(q)).sum())


def test_unique_n_fixed_by_hand():
    rng = np.random.default_rng(0)
    same = np.zeros((10, 5), int)
    assert diversity.unique_n_fixed(same, 4, 7, rng) == pytest.approx(1 / 7)  # one type in every sample of 7
    distinct = np.arange(50).reshape(10, 5)
    assert diversity.unique_n_fixed(distinct, 50, 1000, rng) == 1.0  # M = 30 trigrams, every n-gram distinct
    assert np.isnan(diversity.unique_n_fixed(np.zeros((4, 2), int), 4, 10, rng))  # no trigram at all: undefined


def test_unique_n_fixed_does_not_depend_on_corpus_length():
    """Tokens iid uniform over V: the M sampled unigrams are iid uniform, so the number of distinct ones is the
    occupancy of V boxes by M balls, with exact mean V (1 - (1 - 1/V)^M) and variance
    V (V-1) (1 - 2/V)^M + V (1 - 1/V)^M - V^2 (1 - 1/V)^(2M) — the same for any corpus length."""
    V, M = 200, 300
    mean = V * (1 - (1 - 1 / V) ** M)
    var = V * (V - 1) * (1 - 2 / V) ** M + V * (1 - 1 / V) ** M - V**2 * (1 - 1 / V) ** (2 * M)
    rng = np.random.default_rng(1)
    for N in (100, 2000):
        tokens = rng.integers(0, V, (N, 16))
        ttr = diversity.unique_n_fixed(tokens, V, M, rng, ns=(1,))
        assert abs(ttr * M - mean) < 5 * math.sqrt(var)
        assert diversity.distinct_n(tokens, 1, V) < ttr  # the plain type-token ratio falls with length


def test_self_bleu_by_hand():
    tokens = np.array([[1, 2, 3, 4], [1, 2, 3, 5], [6, 7, 8, 9]])
    # rows 0 and 1 against the others: precisions 3/4, 2/3, 1/2, and 0 smoothed to 0.1/1;
    # row 2 matches no unigram at all: BLEU 0
    bleu01 = (3 / 4 * 2 / 3 * 1 / 2 * 0.1) ** 0.25
    assert diversity.self_bleu(tokens, 10) == pytest.approx(2 * bleu01 / 3)
    assert diversity.self_bleu(np.tile([1, 2, 3, 4, 5], (4, 1)), 10) == pytest.approx(1.0)


@pytest.mark.parametrize("V,S,T", [(2, 6, 6), (4, 12, 10), (30, 20, 16), (2**40, 8, 5), (5, 5, 3)])
def test_self_bleu_matches_nltk(V, S, T):
    """Small vocabularies make repeated n-grams, clipping and ties between references common; T = 3 has no
    4-grams at all."""
    tokens = np.random.default_rng(S * T).integers(0, min(V, 1000), (S, T))
    rows = tokens.tolist()
    smooth = SmoothingFunction().method1
    expected = np.mean([sentence_bleu(rows[:i] + rows[i + 1:], rows[i], smoothing_function=smooth)
                        for i in range(S)])
    assert diversity.self_bleu(tokens, V) == pytest.approx(expected, rel=1e-12)


def test_rep_n_and_duplicates_by_hand():
    tokens = np.array([[1, 2, 1, 2, 1], [1, 2, 3, 4, 5]])
    assert diversity.rep_n(tokens, 2, 6) == pytest.approx((1 - 2 / 4 + 0) / 2)  # 12 21 12 21: 2 of 4 unique
    assert np.isnan(diversity.rep_n(tokens, 6, 6))
    assert diversity.duplicate_fraction(np.array([[1, 2], [1, 2], [3, 4], [1, 2]])) == pytest.approx(0.5)
    assert diversity.duplicate_fraction(np.array([[1, 2], [2, 1]])) == 0.0


def test_token_bytes_are_fixed_width_little_endian():
    assert diversity.token_bytes(np.array([[1, 258]]), 300) == b"\x01\x00\x02\x01"
    assert diversity.token_bytes(np.array([[7, 255], [0, 3]]), 256) == bytes([7, 255, 0, 3])
    assert diversity.token_bytes(np.array([[70000]]), 70001) == b"\x70\x11\x01"


def test_compression_ratio():
    data = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    ratio = diversity.compression_ratio(data)
    assert ratio == len(data) / len(gzip.compress(data, 9, mtime=0))
    # incompressible bytes: deflate stores them in blocks of >= 16383 bytes (zlib's default memory level) at
    # 5 bytes of overhead each, plus gzip's 18-byte header and trailer
    n = len(data)
    assert n / (n + 18 + 5 * math.ceil(n / 16383)) <= ratio < 1
    assert diversity.compression_ratio(b"ab" * 50_000) > 100 * ratio
