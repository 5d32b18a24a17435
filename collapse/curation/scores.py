"""Scores of candidate samples `[M]` (pure functions of arrays; higher or lower is better as the option says).

Every score is per generated token: positions P..T-1, P the prompt tokens in continuation mode, 0 otherwise.
"""

from __future__ import annotations

import numpy as np

from collapse.curation.plugin import load_scorer


def truth(grammar, tokens_MT: np.ndarray, prompt_tokens: int) -> np.ndarray:
    """The exact true log-probability per generated token `[M]` (float64): the perfect verifier."""
    from collapse.data.grammar import true_logprob

    return true_logprob(grammar, tokens_MT, prompt_tokens) / (tokens_MT.shape[1] - prompt_tokens)


def log_ratio(truth_M: np.ndarray, model_logprob_M: np.ndarray, generated: int) -> np.ndarray:
    """log p_true - log q per generated token `[M]` (float64), from the truth's score (`truth`) and the sampling
    model's log-probability of the generated tokens: high where the model under-produces what the truth
    writes, low where it over-produces, so keeping the high end moves the kept set toward the truth rather than
    toward the truth's modes (which the likelihood alone favours)."""
    return truth_M - np.asarray(model_logprob_M, np.float64) / generated


def perplexity(logprob_M: np.ndarray, generated: int) -> np.ndarray:
    """Perplexity per generated token `[M]` (float64) from log q(generated tokens | prompt) `[M]`."""
    return np.exp(-np.asarray(logprob_M, np.float64) / generated)


def noisy(scores_M: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """`scores_M` plus iid N(0, std²) noise (an imperfect verifier); unchanged for std 0 (no draw)."""
    return scores_M + std * rng.standard_normal(len(scores_M)) if std > 0 else scores_M


def user(path: str, tokens_MT: np.ndarray, prompt_tokens: int) -> np.ndarray:
    """The user's verifier `path` on the candidates `[M]` (float64), checked: one finite score per candidate,
    else a `ConfigError` on `curate.scorer` saying what it returned."""
    from collapse.errors import ConfigError

    returned = load_scorer(path)(tokens_MT, prompt_tokens)
    need = f"{path} must return one finite score per candidate (shape ({len(tokens_MT)},)); it returned "
    try:
        scores_M = np.asarray(returned, np.float64)
    except (TypeError, ValueError):
        raise ConfigError("curate.scorer", need + f"a {type(returned).__name__}, not numbers") from None
    if scores_M.shape != (len(tokens_MT),):
        raise ConfigError("curate.scorer", need + f"shape {scores_M.shape}")
    if not np.isfinite(scores_M).all():
        bad = {"NaN": int(np.isnan(scores_M).sum()), "inf": int(np.isinf(scores_M).sum())}
        raise ConfigError("curate.scorer", need + " and ".join(f"{n} {k}" for k, n in bad.items() if n)
                          + f" among {len(scores_M)} scores")
    return scores_M
