"""Diversity of a generated corpus `tokens_NT` (integer tokens, sequences of equal length).

n-grams never cross sequence boundaries. All counts are exact (no hashing collisions): an n-gram is
packed into one integer when vocab**n fits in int64, else compared row-wise. Every function is linear
(or n log n, through a sort) in the corpus size; self-BLEU is linear in the size of the subset it is given.

Shape suffixes: the package's (collapse/__init__.py), and S the sequences of the self-BLEU subset, L a
sequence's n-gram windows.
"""

from __future__ import annotations

import gzip

import numpy as np

from collapse.metrics.families import Family, declare

declare(Family("diversity", "Diversity", 1, ("distinct_*", "unique_n_fixed", "self_bleu*", "unigram_entropy",
                                          "bigram_entropy", "compression_ratio", "rep_*", "dup_frac",
                                          "semantic_distance", "vendi"), headline=("distinct_2", "self_bleu4")))


def ngrams(tokens_NT: np.ndarray, n: int) -> np.ndarray:
    """All n-grams within sequences, as rows `[N * (T - n + 1), n]`."""
    tokens_NT = np.asarray(tokens_NT)
    N, T = tokens_NT.shape
    if T < n:
        return np.empty((0, n), tokens_NT.dtype)
    return np.lib.stride_tricks.sliding_window_view(tokens_NT, n, axis=1).reshape(-1, n)


def ngram_ids(tokens_NT: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """One exact integer id per n-gram (packed base-`vocab_size` when it fits, else by unique rows)."""
    grams = ngrams(tokens_NT, n).astype(np.int64)
    if n * np.log2(max(vocab_size, 2)) < 62:
        return grams @ (vocab_size ** np.arange(n - 1, -1, -1, dtype=np.int64))
    return np.unique(grams, axis=0, return_inverse=True)[1].ravel()


def ngram_counts(tokens_NT: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """How often each distinct n-gram of the corpus occurs (in no particular order)."""
    ids = ngram_ids(tokens_NT, n, vocab_size)
    if n == 1:
        counts = np.bincount(ids)
        return counts[counts > 0]
    return np.unique(ids, return_counts=True)[1]


def distinct_n(tokens_NT: np.ndarray, n: int, vocab_size: int) -> float:
    """Unique n-grams / total n-grams over the whole corpus (Li et al. 2016, corpus level); undefined (nan, null
    in metrics.jsonl) without n-grams (sequences shorter than n), which 0 would misread as total collapse."""
    counts = ngram_counts(tokens_NT, n, vocab_size)
    return float(len(counts) / counts.sum()) if len(counts) else float("nan")


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of the distribution proportional to `counts`."""
    counts = np.asarray(counts, np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def ngram_entropy_bits(tokens_NT: np.ndarray, n: int, vocab_size: int) -> float:
    """Entropy (bits) of the corpus' empirical n-gram distribution (n = 1: unigram, n = 2: joint bigram)."""
    return entropy_bits(ngram_counts(tokens_NT, n, vocab_size))


def unigram_entropy_bits(tokens_NT: np.ndarray, vocab_size: int) -> float:
    """Shannon entropy (bits) of the corpus' token frequencies."""
    return ngram_entropy_bits(tokens_NT, 1, vocab_size)


def unique_n_fixed(tokens_NT: np.ndarray, vocab_size: int, sample: int, rng: np.random.Generator,
                   ns: tuple[int, ...] = (1, 2, 3)) -> float:
    """Type-token ratio of a fixed-size random sample of n-gram occurrences, averaged over n in `ns`
    (Guo et al. 2024): unlike distinct-n it does not fall merely because a corpus is longer.

    For every n the sample has M = min(`sample`, number of `max(ns)`-grams in the corpus) occurrences, drawn
    uniformly without replacement from all n-gram positions; undefined (nan) when the corpus has no
    `max(ns)`-gram.
    """
    N, T = np.shape(tokens_NT)
    m = min(sample, N * max(T - max(ns) + 1, 0))
    if m == 0:
        return float("nan")
    ratios = []
    for n in ns:
        ids = ngram_ids(tokens_NT, n, vocab_size)
        ratios.append(len(np.unique(ids[rng.choice(len(ids), m, replace=False)])) / m)
    return float(np.mean(ratios))


def _clipped_matches(tokens_ST: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """BLEU's clipped n-gram matches `[S]` of each sequence against all the others as references:
    sum over its n-grams g of min(count_s(g), max_{r != s} count_r(g)).

    The maximum over the other sequences is the largest count of g across sequences, or the second largest
    where sequence s holds the largest: two numbers per n-gram, so the cost is a sort, not S^2 comparisons.
    """
    S, T = tokens_ST.shape
    if T < n:
        return np.zeros(S)
    gram_SL = np.unique(ngram_ids(tokens_ST, n, vocab_size), return_inverse=True)[1].reshape(S, T - n + 1)
    G = int(gram_SL.max()) + 1
    pairs, c = np.unique((np.arange(S)[:, None] * G + gram_SL).ravel(), return_counts=True)
    seq, g = np.divmod(pairs, G)
    order = np.lexsort((-c, g))  # by n-gram, then count descending
    g_sorted, c_sorted = g[order], c[order]
    first = np.r_[True, g_sorted[1:] != g_sorted[:-1]]
    second = np.r_[False, first[:-1]] & ~first
    top1, top2 = np.zeros(G, np.int64), np.zeros(G, np.int64)
    top1[g_sorted[first]] = c_sorted[first]
    top2[g_sorted[second]] = c_sorted[second]
    max_other = np.where(c < top1[g], top1[g], top2[g])
    return np.bincount(seq, weights=np.minimum(c, max_other), minlength=S)


def self_bleu(tokens_ST: np.ndarray, vocab_size: int, max_n: int = 4, epsilon: float = 0.1) -> float:
    """Mean sentence BLEU-`max_n` (uniform weights) of each of the S sequences against the other S - 1 as
    references (Zhu et al. 2018); higher means less diverse.

    Exactly NLTK's `sentence_bleu` with `SmoothingFunction(epsilon).method1`: a zero n-gram precision becomes
    epsilon / max(1, hypothesis n-grams), and a hypothesis without a single unigram match scores 0. All
    sequences have one length, so the brevity penalty is 1.
    """
    tokens_ST = np.asarray(tokens_ST)
    S, T = tokens_ST.shape
    log_p_S = np.zeros(S)
    for n in range(1, max_n + 1):
        matches_S = _clipped_matches(tokens_ST, n, vocab_size)
        if n == 1:
            no_match_S = matches_S == 0
        log_p_S += np.log(np.where(matches_S > 0, matches_S, epsilon) / max(1, T - n + 1)) / max_n
    return float(np.where(no_match_S, 0.0, np.exp(log_p_S)).mean())


def rep_n(tokens_NT: np.ndarray, n: int, vocab_size: int) -> float:
    """seq-rep-n (Welleck et al. 2020): 1 - unique / total n-grams within each sequence, averaged over
    sequences; undefined (nan) for sequences shorter than n."""
    N, T = np.shape(tokens_NT)
    if T < n:
        return float("nan")
    ids_NL = np.sort(ngram_ids(tokens_NT, n, vocab_size).reshape(N, T - n + 1), axis=1)
    unique_N = 1 + (ids_NL[:, 1:] != ids_NL[:, :-1]).sum(axis=1)
    return float(np.mean(1 - unique_N / (T - n + 1)))


def duplicate_fraction(tokens_NT: np.ndarray) -> float:
    """1 - distinct sequences / N: the share of sequences that exactly repeat another one."""
    tokens_NT = np.ascontiguousarray(tokens_NT)
    N, T = tokens_NT.shape
    rows = tokens_NT.view(np.dtype((np.void, tokens_NT.dtype.itemsize * T))).ravel()
    return float(1 - len(np.unique(rows)) / N)


def token_bytes(tokens_NT: np.ndarray, vocab_size: int) -> bytes:
    """The corpus as bytes when it has no text: each token an unsigned little-endian integer of the fewest
    whole bytes that hold `vocab_size - 1`, sequence after sequence, no separators."""
    width = max(1, -(-int(vocab_size - 1).bit_length() // 8))
    le_N4 = np.asarray(tokens_NT, "<u4").reshape(-1, 1).view(np.uint8)
    return le_N4[:, :width].tobytes()


def compression_ratio(data: bytes) -> float:
    """len(data) / len(gzip(data)) at level 9 (no timestamp, so deterministic): higher is more repetitive."""
    return len(data) / len(gzip.compress(data, compresslevel=9, mtime=0))
