"""Diversity of a generated corpus `tokens_NT` (integer tokens, sequences of equal length).

n-grams never cross sequence boundaries. All counts are exact (no hashing collisions): an n-gram is
packed into one integer when vocab**n fits in int64, else compared row-wise.
"""

from __future__ import annotations

import numpy as np


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


def distinct_n(tokens_NT: np.ndarray, n: int, vocab_size: int) -> float:
    """Unique n-grams / total n-grams over the whole corpus (Li et al. 2016, corpus level)."""
    ids = ngram_ids(tokens_NT, n, vocab_size)
    return float(len(np.unique(ids)) / len(ids)) if len(ids) else 0.0


def unigram_entropy_bits(tokens_NT: np.ndarray, vocab_size: int) -> float:
    """Shannon entropy (bits) of the corpus' token frequencies."""
    counts = np.bincount(np.asarray(tokens_NT).ravel(), minlength=vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())
