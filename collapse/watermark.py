"""Watermarked sampling and its detection from text alone (`sample.watermark`).

Both schemes seed a generator with the watermark key and the `context` tokens before the next one (the
sequence's own prefix, left-padded with BOS), so whoever holds the key recomputes every token's score from
the tokens alone, without the model:
- `green_list` (Kirchenbauer et al. 2023): the green list is the first floor(gamma V) entries of a permutation
  of the vocabulary drawn from that generator (`green_mask`); delta is added to the green tokens' logits before temperature,
  top-k and top-p. A token's score is 1 if it is green; under no watermark the count of green tokens among N
  scored ones is Binomial(N, floor(gamma V) / V).
- `gumbel` (Aaronson 2022): r in (0, 1)^V from that generator; the token maximising r_x^(1 / p_x), p after
  temperature, top-k and top-p. Over keys it is a draw from p (the watermark changes no distribution); for
  one key and context it is fixed. A token's score is -log(1 - r_x): Exponential(1) without the watermark,
  so the sum over N scored tokens is Gamma(N, 1).

Scoring follows Sander et al. (NeurIPS 2024): only the first occurrence of each (window, token) tuple in the
scored corpus counts, and windows that occur in the sequence's own prompt are skipped; without that
deduplication repeated windows make the p-values anti-conservative.

Shape suffixes: the package's (collapse/__init__.py), and C the context window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

P_FLOOR = 1e-300  # p-values below float64's range are reported as this


@dataclass(frozen=True)
class Watermark:
    """A watermark's static settings (a jit static argument of the sampler)."""

    scheme: str = "none"
    key: int = 0
    context: int = 2
    gamma: float = 0.25
    delta: float = 2.0

    @property
    def on(self) -> bool:
        return self.scheme != "none"

    def n_green(self, V: int) -> int:
        return int(math.floor(self.gamma * V))


def of(cfg) -> Watermark:
    """The watermark a `SampleConfig` asks for."""
    return Watermark(cfg.watermark, cfg.watermark_key, cfg.watermark_context, cfg.watermark_gamma,
                     cfg.watermark_delta)


def window_keys(mark: Watermark, window_BC: jax.Array) -> jax.Array:
    """One PRNG key per row: the watermark key folded with each token of the row's context window."""
    key = jax.random.key(mark.key, impl="threefry2x32")  # pinned: a detector must rebuild the same keys
    return jax.vmap(lambda w_C: _fold(key, w_C))(window_BC)


def _fold(key: jax.Array, window_C: jax.Array) -> jax.Array:
    for c in range(window_C.shape[0]):
        key = jax.random.fold_in(key, window_C[c])
    return key


def green_mask(mark: Watermark, window_BC: jax.Array, V: int) -> jax.Array:
    """`[B, V]` bool: the green list of each row's window, the first floor(gamma V) entries of the permutation
    that sorts V random 32-bit words stably (`np.argsort(bits, kind="stable")`): the tokens below the n-th
    smallest word, and of the tokens tied with it the first by index. A sort and a comparison, a sixth of the
    cost of `jax.random.permutation` or an argsort on the CPU."""
    n = mark.n_green(V)
    return jax.vmap(lambda key: head_mask(jax.random.bits(key, (V,)), n))(window_keys(mark, window_BC))


def head_mask(words_V: jax.Array, n: int) -> jax.Array:
    """`[V]` bool: the first n entries of the stable argsort of `words_V`."""
    threshold = jnp.sort(words_V)[n - 1]
    below_V, tied_V = words_V < threshold, words_V == threshold
    return below_V | (tied_V & (jnp.cumsum(tied_V) <= n - below_V.sum()))


def uniforms(mark: Watermark, window_BC: jax.Array, V: int) -> jax.Array:
    """`[B, V]` float32 in [0, 1): the Gumbel rule's r of each row's window."""
    return jax.vmap(lambda key: jax.random.uniform(key, (V,)))(window_keys(mark, window_BC))


def gumbel_pick(logp_BK: jax.Array, r_BK: jax.Array) -> jax.Array:
    """argmax_x r_x^(1 / p_x) = argmax_x log(r_x) / p_x over each row (p = 0 never wins)."""
    return jnp.argmax(jnp.log(r_BK) * jnp.exp(-logp_BK), axis=-1)


def bos_padded(tokens_NT: np.ndarray, bos: int, context: int) -> np.ndarray:
    """The sequences as the sampler saw them: `context` BOS tokens first (the window of the first token)."""
    return np.concatenate([np.full((tokens_NT.shape[0], context), bos, tokens_NT.dtype), tokens_NT], axis=1)


@partial(jax.jit, static_argnums=(0, 3))
def _token_scores(mark: Watermark, window_MC, token_M, V: int):
    if mark.scheme == "green_list":
        return jnp.take_along_axis(green_mask(mark, window_MC, V), token_M[:, None], axis=1)[:, 0].astype(jnp.float32)
    r_M = jnp.take_along_axis(uniforms(mark, window_MC, V), token_M[:, None], axis=1)[:, 0]
    return -jnp.log1p(-r_M)


def token_scores(mark: Watermark, window_MC: np.ndarray, token_M: np.ndarray, V: int, batch: int = 4096) -> np.ndarray:
    """Each (window, token)'s score `[M]`: green (1 / 0) or -log(1 - r_token), in batches of `batch`, or of the
    power of two above M when fewer (a handful of programs, whatever the corpora's sizes)."""
    M = len(token_M)
    size = min(batch, 1 << max(M - 1, 63).bit_length())
    pad = -M % size
    window_MC = np.pad(window_MC, ((0, pad), (0, 0)))
    token_M = np.pad(token_M, (0, pad))
    out = [np.asarray(_token_scores(mark, window_MC[i:i + size], token_M[i:i + size], V))
           for i in range(0, M + pad, size)]
    return np.concatenate(out)[:M] if out else np.zeros(0, np.float32)


@dataclass(frozen=True)
class Detection:
    """The test of one corpus: N scored tokens, their total score S, the exact p-value and the z-score."""

    scored: int
    score: float
    p_value: float
    z: float

    @property
    def log10_p(self) -> float:
        return math.log10(max(self.p_value, P_FLOOR))


def windows(tokens_NT: np.ndarray, bos: int, context: int) -> np.ndarray:
    """The window `[N * T, C]` before every token of a corpus (BOS-padded), row-major."""
    seq_NS = bos_padded(tokens_NT, bos, context)
    return np.stack([seq_NS[:, c:c + tokens_NT.shape[1]] for c in range(context)], axis=-1).reshape(-1, context)


def _among(a_MC: np.ndarray, b_KC: np.ndarray) -> np.ndarray:
    """Which rows of `a` occur among the rows of `b` `[M]`."""
    inverse = np.unique(np.concatenate([b_KC, a_MC]), axis=0, return_inverse=True)[1].reshape(-1)
    return np.isin(inverse[len(b_KC):], inverse[:len(b_KC)])


def scored_positions(tokens_NT: np.ndarray, prompt_len: int, bos: int, context: int, dedup: bool = True,
                     predicted_NT: np.ndarray | None = None, within_NT: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The (window `[M, C]`, token `[M]`) pairs a detector scores, in corpus order: every position after the
    prompt; with `dedup` (Sander et al.'s) only those whose window is not that of a token of the sequence's own
    prompt, and of those the first occurrence of each (window, token) in the corpus (row-major order). With
    `predicted_NT` (the open-model test) the token of a position is a reader's prediction there, the window the
    text's, and a position whose window occurred earlier in its row is skipped (Sander et al.'s reading mode): a
    reader may copy what followed it there, a token the watermark chose. With `within_NT` (Sander et al.'s
    filter) only windows that occur in that corpus, e.g. the suspect's known training data, are scored."""
    N, T = tokens_NT.shape
    seq_NS = bos_padded(tokens_NT, bos, context)
    idx = np.arange(prompt_len, T)
    window_NXC = np.stack([seq_NS[:, idx + c] for c in range(context)], axis=-1)
    scored_NT = tokens_NT if predicted_NT is None else predicted_NT
    window_MC, token_M = window_NXC.reshape(-1, context), scored_NT[:, prompt_len:].reshape(-1)
    if not dedup or len(token_M) == 0:
        return window_MC, token_M
    keep_M = np.ones(len(token_M), bool)
    if prompt_len:  # the windows of the prompt's own tokens: after one, a model may copy the prompt's next token
        row_M = np.repeat(np.arange(N), T - prompt_len)
        starts = np.arange(prompt_len)
        prompt_NYC = np.stack([seq_NS[:, starts + c] for c in range(context)], axis=-1)
        prompt_rows = np.concatenate([np.repeat(np.arange(N), prompt_len)[:, None], prompt_NYC.reshape(-1, context)],
                                     axis=1)
        keep_M = ~_among(np.concatenate([row_M[:, None], window_MC], axis=1), prompt_rows)
    if predicted_NT is not None:  # the first occurrence of each window in its row, prompt positions included
        all_NTC = windows(tokens_NT, bos, context).reshape(N, T, context)
        rows_NT = np.broadcast_to(np.arange(N)[:, None, None], (N, T, 1))
        first_NT = np.zeros(N * T, bool)
        first_NT[np.unique(np.concatenate([rows_NT, all_NTC], axis=2).reshape(N * T, -1), axis=0,
                           return_index=True)[1]] = True
        keep_M &= first_NT.reshape(N, T)[:, prompt_len:].reshape(-1)
    if within_NT is not None:
        keep_M &= _among(window_MC, windows(within_NT, bos, context))
    kept = np.flatnonzero(keep_M)  # then the first occurrence of each (window, token) among the rest
    first = np.unique(np.concatenate([window_MC[kept], token_M[kept, None]], axis=1), axis=0, return_index=True)[1]
    keep_M[:] = False
    keep_M[kept[first]] = True
    return window_MC[keep_M], token_M[keep_M]


def p_value(mark: Watermark, scores_M: np.ndarray, V: int) -> Detection:
    """The exact one-sided p-value of the scores under no watermark: P(Binomial(N, g) >= S) with g the green
    fraction, or P(Gamma(N, 1) >= S) for the Gumbel scores; and the z-score of S against its null mean."""
    from scipy.special import betainc, gammaincc

    N, S = len(scores_M), float(np.sum(scores_M, dtype=np.float64))
    if N == 0:
        return Detection(0, 0.0, 1.0, 0.0)
    if mark.scheme == "green_list":
        g = mark.n_green(V) / V
        p = 1.0 if S <= 0 else float(betainc(S, N - S + 1, g))
        return Detection(N, S, p, (S - g * N) / math.sqrt(N * g * (1 - g)))
    return Detection(N, S, float(gammaincc(N, S)), (S - N) / math.sqrt(N))


def detect(mark: Watermark, tokens_NT: np.ndarray, V: int, prompt_len: int = 0, dedup: bool = True,
           predicted_NT: np.ndarray | None = None, within_NT: np.ndarray | None = None) -> Detection:
    """Closed-model detection: did this watermark write these sequences (prompt tokens first, not scored)? With
    a reader's predictions `predicted_NT` at every position of watermarked sequences, the open-model test (Sander
    et al.'s reading mode): does the reader continue the watermarked text's windows with green tokens (or high
    r) more often than chance, i.e. did it learn from text this watermark wrote? `within_NT`: score only the
    windows that occur in this corpus (`scored_positions`)."""
    window_MC, token_M = scored_positions(tokens_NT, prompt_len, bos=V, context=mark.context, dedup=dedup,
                                          predicted_NT=predicted_NT, within_NT=within_NT)
    return p_value(mark, token_scores(mark, window_MC, token_M, V), V)


def evidence(mark: Watermark, tokens_NT: np.ndarray, V: int, prompt_len: int = 0) -> dict[str, float]:
    """A corpus' metric rows under the study's watermark key (docs/metrics.md): the closed-model test's log10
    p-value, its z-score and the number of tokens it scored. Computed for every generation, so the rows of a
    generation that samples without the watermark (`sample.watermark_generations`) measure what its model
    learned from watermarked ancestors (radioactivity), and the human data's rows are the null."""
    d = detect(mark, tokens_NT, V, prompt_len)
    return {"watermark_log10p": d.log10_p, "watermark_z": d.z, "watermark_scored": float(d.scored)}


def reading_evidence(mark: Watermark, marked_NT: np.ndarray, predicted_NT: np.ndarray, V: int,
                     prompt_len: int = 0) -> dict[str, float]:
    """The open-model test's rows: a model's predictions `predicted_NT` on watermarked text `marked_NT`."""
    d = detect(mark, marked_NT, V, prompt_len, predicted_NT=predicted_NT)
    return {"watermark_read_log10p": d.log10_p, "watermark_read_z": d.z, "watermark_read_scored": float(d.scored)}
