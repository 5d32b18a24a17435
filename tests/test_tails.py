import math

import numpy as np
import pytest

from collapse.metrics import tails


def test_buckets_by_cumulative_mass():
    ref = np.array([50, 30, 10, 5, 3, 2, 0])
    # more frequent mass before each type: 0 50 80 90 95 98 100 -> head while < 50: type 0 only;
    # rarer mass after each type: 50 20 10 5 2 0 0 -> tail while < 10: types 3.. (5 + 3 + 2 + 0 = 10 >= 10)
    expected = np.array([0, 1, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(tails.buckets(ref, 0.5, 0.1), expected)
    perm = np.random.default_rng(0).permutation(len(ref))  # ids do not matter, only the masses
    np.testing.assert_array_equal(tails.buckets(ref[perm], 0.5, 0.1), expected[perm])
    # ties: the lower id ranks first; a type that would be head and tail at once is head
    np.testing.assert_array_equal(tails.buckets(np.array([1, 1, 1, 1]), 0.5, 0.25), [0, 0, 1, 2])
    np.testing.assert_array_equal(tails.buckets(np.array([9, 1]), 0.5, 0.95), [0, 2])
    assert tails.bucket_mass(ref, expected) == pytest.approx([0.5, 0.4, 0.1])


def test_a_corpus_with_its_tail_deleted():
    """Human counts Zipf-like over 40 types; the generated corpus keeps head and torso exactly in proportion and
    never emits a tail type: tail mass ratio 0, the others 1 / (1 - human tail mass), tail survival 0."""
    ref = np.round(1000 * np.arange(1, 41) ** -1.2).astype(int)
    b = tails.buckets(ref, 0.5, 0.1)
    tail_share = ref[b == 2].sum() / ref.sum()
    gen = np.where(b == 2, 0, 3 * ref)
    ratios = tails.mass_ratios(gen, ref, b)
    assert ratios["tail_mass_ratio"] == 0.0
    assert ratios["head_mass_ratio"] == pytest.approx(1 / (1 - tail_share))
    assert ratios["torso_mass_ratio"] == pytest.approx(1 / (1 - tail_share))
    s = tails.survival(gen, ref, b, "_x")
    assert (s["survival_head_x"], s["survival_torso_x"], s["survival_tail_x"]) == (1.0, 1.0, 0.0)
    assert s["survival_x"] == pytest.approx((b != 2).sum() / 40)
    # a type the reference never saw counts for neither survival nor the ratios' reference
    s = tails.survival(np.append(gen, 5), np.append(ref, 0), np.append(b, 2))
    assert s["survival"] == pytest.approx((b != 2).sum() / 40)


def test_model_mass_ratios_of_a_distribution():
    p = np.array([0.6, 0.3, 0.1])
    b = np.array([0, 1, 2])
    assert tails.mass_ratios(p, 10 * p, b, "_m") == \
        pytest.approx({"head_mass_ratio_m": 1.0, "torso_mass_ratio_m": 1.0, "tail_mass_ratio_m": 1.0})
    assert tails.mass_ratios(np.array([0.7, 0.3, 0.0]), p, b) == \
        pytest.approx({"head_mass_ratio": 0.7 / 0.6, "torso_mass_ratio": 1.0, "tail_mass_ratio": 0.0})


def test_kl_unigram_by_hand():
    p, counts = np.array([1, 1]), np.array([3, 1])
    assert tails.kl_unigram(p, counts, 1e-300) == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
    # add-one: q = (4/6, 2/6); a type the reference lacks adds nothing but takes smoothing mass
    assert tails.kl_unigram(p, counts, 1.0) == pytest.approx(0.5 * math.log(0.5 / (4 / 6)) + 0.5 * math.log(1.5))
    assert tails.kl_unigram([1, 1, 0], [3, 1, 0], 1.0) == pytest.approx(
        0.5 * math.log(0.5 / (4 / 7)) + 0.5 * math.log(0.5 / (2 / 7)))
    assert tails.kl_unigram(p, np.array([0, 0]), 0.5) == pytest.approx(0.0)  # empty corpus: q uniform = p


def test_zipf_exponent_recovers_an_exact_power_law():
    """Counts exactly proportional to r^-s make the tokens' mean log rank equal E_s[log r]: the MLE is s."""
    for s in (0.7, 1.0, 1.3, 2.5):
        counts = np.arange(1, 301, dtype=float) ** -s
        assert tails.zipf_exponent(np.random.default_rng(0).permutation(counts)) == pytest.approx(s, rel=1e-8)
    assert tails.zipf_exponent(np.array([5, 5, 5, 0])) == 0.0
    assert math.isnan(tails.zipf_exponent(np.array([0, 7, 0])))


def test_last_seen():
    counts_GRV = np.array([[[1, 0, 0]], [[0, 0, 0]], [[2, 0, 1]]])  # 3 generations, 1 replicate, 3 types
    np.testing.assert_array_equal(tails.last_seen(counts_GRV), [[2, -1, 2]])
    np.testing.assert_array_equal(tails.last_seen(counts_GRV[:2]), [[0, -1, -1]])
