"""Perplexity and divergence from per-sequence log-probabilities (natural log, per token)."""

from __future__ import annotations

import numpy as np


def nll_per_token(logprob_N: np.ndarray, seq_len: int) -> float:
    """Mean negative log-likelihood per token (nats) of a corpus of equal-length sequences."""
    return float(-np.mean(np.asarray(logprob_N, np.float64)) / seq_len)


def perplexity(logprob_N: np.ndarray, seq_len: int) -> float:
    """exp(mean NLL per token): the corpus-level perplexity."""
    return float(np.exp(nll_per_token(logprob_N, seq_len)))


def kl_true_to_model(true_logprob_N: np.ndarray, model_logprob_N: np.ndarray, seq_len: int) -> float:
    """KL(true || model) per token (nats), estimated on samples x ~ true as mean[log p(x) - log q(x)] / T.

    Its expectation is the exact KL = H(p, q) - H(p) (cross-entropy minus the exact block entropy); pairing
    log p and log q on the same samples cancels most of the sampling noise of the cross-entropy alone.
    """
    diff = np.asarray(true_logprob_N, np.float64) - np.asarray(model_logprob_N, np.float64)
    return float(diff.mean() / seq_len)
