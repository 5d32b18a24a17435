"""Perplexity and divergence from per-sequence log-probabilities (natural log, per token)."""

from __future__ import annotations

import numpy as np

from collapse.metrics.families import Family, declare

declare(Family("perplexity", "Perplexity drift", 0, ("ppl_*", "kl_true", "true_nll_samples"),
               headline=("kl_true", "ppl_human_test", "ppl_gen0")))

# Per-sequence perplexity summaries: name suffix -> percentile (NumPy's default linear interpolation).
PERCENTILES = {"median": 50, "p10": 10, "p90": 90, "p99": 99}


def nll_per_token(logprob_N: np.ndarray, seq_len: int) -> float:
    """Mean negative log-likelihood per token (nats) of a corpus of equal-length sequences."""
    return float(-np.mean(np.asarray(logprob_N, np.float64)) / seq_len)


def perplexity(logprob_N: np.ndarray, seq_len: int) -> float:
    """exp(mean NLL per token): the corpus-level perplexity."""
    return float(np.exp(nll_per_token(logprob_N, seq_len)))


def sequence_perplexity(logprob_N: np.ndarray, seq_len: int) -> np.ndarray:
    """exp(-log p(x) / T) of each sequence `[N]` (float64); their geometric mean is the corpus perplexity."""
    return np.exp(-np.asarray(logprob_N, np.float64) / seq_len)


def perplexity_summary(logprob_N: np.ndarray, seq_len: int, name: str) -> dict[str, float]:
    """`name`: the corpus perplexity; `name_mean`, `name_median`, `name_p10` ...: the arithmetic mean and
    percentiles of the per-sequence perplexities (the shape of Shumailov et al.'s histograms, in numbers)."""
    ppl_N = sequence_perplexity(logprob_N, seq_len)
    out = {name: perplexity(logprob_N, seq_len), f"{name}_mean": float(ppl_N.mean())}
    out.update({f"{name}_{k}": float(np.percentile(ppl_N, q)) for k, q in PERCENTILES.items()})
    return out


def kl_true_to_model(true_logprob_N: np.ndarray, model_logprob_N: np.ndarray, seq_len: int) -> float:
    """KL(true || model) per token (nats), estimated on samples x ~ true as mean[log p(x) - log q(x)] / T.

    Its expectation is the exact KL = H(p, q) - H(p) (cross-entropy minus the exact block entropy); pairing
    log p and log q on the same samples cancels most of the sampling noise of the cross-entropy alone.
    """
    diff = np.asarray(true_logprob_N, np.float64) - np.asarray(model_logprob_N, np.float64)
    return float(diff.mean() / seq_len)
