"""The human-vs-synthetic classifier of `curate=detector` (`collapse.curation.detector`): trained each generation,
calibrated on held-out rows, tested against chance, and cross-fitted so that no candidate is scored by a
classifier that saw it.

Drayson et al. 2025 use a pretrained ModernBERT detector, temperature-calibrated (1.36) and fixed across
generations. Ours is a small fastText-like model (`train`) fitted each generation on the human and synthetic
data available then, so it tracks the current model's artefacts and needs no external weights. It is trained
from scratch on a few hundred rows, which it partly memorises (unseen rows then score low, whatever their
class), so it is calibrated on its held-out rows by Platt scaling (a scale and a shift, `calibrate`), and used
only if it beats chance there (`rank_test` at `significance`); otherwise it scores every row 1/2 and the
resampling is uniform. Without both, a detector that cannot tell a perfect generator's samples from human data
spread its scores over 0.002–0.98, and the weights (1 - p)^10 over four orders of magnitude.

The model: token embeddings (and hashed bigram embeddings) mean-pooled over the scored positions, then a
linear head on the pooled vector — a linear model of the sequence's bag of unigrams and bigrams (Joulin et al.
2017, fastText). In continuation mode the first `prompt_tokens` tokens are a human prompt shared by both
classes: they are cut off before the model sees the sequence (a bigram straddling the prompt's end is dropped
too), so nothing about the prompt can change a score. Scores of rows the detector was trained on are biased
towards their label (it has seen them): score fresh candidates, not the detector's own training rows.

Shape suffixes: N sequences, T positions, B batch rows per class, V vocabulary, U bigram buckets,
D embedding width, M candidates.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

KNUTH = 2654435761  # multiplicative hash constant (odd, ≈ 2^32 / golden ratio)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Detector:
    """The classifier's parameters (a pytree). logit(synthetic) = w · pool(tokens) + b."""

    embed_VD: jax.Array  # unigram embeddings
    bigram_UD: jax.Array  # bigram embeddings: exact (H = V^2) when V^2 <= the bucket budget, else hashed
    w_D: jax.Array
    b: jax.Array  # scalar


def init(key: jax.Array, vocab_size: int, d_embed: int, bigram_buckets: int) -> Detector:
    """Small random embeddings and a zero head, so every sequence starts at p = 1/2."""
    H = min(bigram_buckets, vocab_size**2)
    k_uni, k_bi = jax.random.split(key)
    return Detector(embed_VD=0.1 * jax.random.normal(k_uni, (vocab_size, d_embed)),
                    bigram_UD=0.1 * jax.random.normal(k_bi, (H, d_embed)),
                    w_D=jnp.zeros(d_embed), b=jnp.zeros(()))


def bigram_ids(prev_NT: jax.Array, next_NT: jax.Array, vocab_size: int, buckets: int) -> jax.Array:
    """Row of each bigram in the bigram table: prev · V + next when all V^2 bigrams fit, else its
    multiplicative (Knuth) hash into `buckets` (a power of two) rows."""
    flat_NT = prev_NT.astype(jnp.uint32) * jnp.uint32(vocab_size) + next_NT.astype(jnp.uint32)
    if vocab_size**2 <= buckets:
        return flat_NT.astype(jnp.int32)
    shift = 32 - int(math.log2(buckets))
    return ((flat_NT * jnp.uint32(KNUTH)) >> jnp.uint32(shift)).astype(jnp.int32)


def logits(det: Detector, scored_NT: jax.Array) -> jax.Array:
    """logit P(synthetic) `[N]` of sequences already cut to their scored positions."""
    V, H = det.embed_VD.shape[0], det.bigram_UD.shape[0]
    pooled_ND = det.embed_VD[scored_NT].mean(axis=1)
    if H > 0 and scored_NT.shape[1] > 1:
        ids_NT = bigram_ids(scored_NT[:, :-1], scored_NT[:, 1:], V, H)
        pooled_ND = pooled_ND + det.bigram_UD[ids_NT].mean(axis=1)
    return pooled_ND @ det.w_D + det.b


def balanced_loss(det: Detector, human_BT: jax.Array, synthetic_BT: jax.Array) -> jax.Array:
    """Binary cross-entropy with each class weighted 1/2, whatever the class sizes."""
    human_loss = jax.nn.softplus(logits(det, human_BT)).mean()  # -log(1 - p)
    synthetic_loss = jax.nn.softplus(-logits(det, synthetic_BT)).mean()  # -log p
    return 0.5 * (human_loss + synthetic_loss)


@partial(jax.jit, static_argnames=("steps", "batch"))
def fit(det: Detector, key: jax.Array, human_NT: jax.Array, synthetic_NT: jax.Array, lr: jax.Array,
        steps: int, batch: int) -> tuple[Detector, jax.Array]:
    """`steps` Adam steps in one `lax.scan`; each draws `batch` rows of each class uniformly with replacement
    (a class-balanced minibatch). Returns the detector and the loss per step."""
    opt = optax.adam(lr)

    def step(carry, key):
        det, opt_state = carry
        k_h, k_s = jax.random.split(key)
        human_BT = human_NT[jax.random.randint(k_h, (batch,), 0, human_NT.shape[0])]
        synthetic_BT = synthetic_NT[jax.random.randint(k_s, (batch,), 0, synthetic_NT.shape[0])]
        loss, grads = jax.value_and_grad(balanced_loss)(det, human_BT, synthetic_BT)
        updates, opt_state = opt.update(grads, opt_state, det)
        return (optax.apply_updates(det, updates), opt_state), loss

    (det, _), loss_S = jax.lax.scan(step, (det, opt.init(det)), jax.random.split(key, steps))
    return det, loss_S


def calibrate(logit_human_N: np.ndarray, logit_synthetic_N: np.ndarray, iterations: int = 50
              ) -> tuple[float, float]:
    """Platt scaling fitted on held-out rows: (a, c) minimising the class-balanced cross-entropy of
    sigmoid(a · logit + c) against Platt's smoothed targets (n_s + 1) / (n_s + 2) for synthetic rows and
    1 / (n_h + 2) for human ones, which keep a finite when a few held-out rows separate perfectly; a >= 0 (a
    detector may be useless, not inverted). Newton's method in float64. A detector that cannot tell the
    classes apart gets a ≈ 0 and c ≈ 0: every score near 1/2."""
    n_h, n_s = len(logit_human_N), len(logit_synthetic_N)
    z = np.concatenate([logit_human_N, logit_synthetic_N]).astype(np.float64)
    y = np.concatenate([np.full(n_h, 1 / (n_h + 2)), np.full(n_s, (n_s + 1) / (n_s + 2))])
    w = np.concatenate([np.full(n_h, 0.5 / n_h), np.full(n_s, 0.5 / n_s)])  # each class weighs 1/2
    X = np.stack([z, np.ones_like(z)], axis=1)
    theta = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(X @ theta)))
        grad = X.T @ (w * (p - y))
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-12 * np.eye(2)
        theta = theta - np.linalg.solve(hess, grad)
        if theta[0] < 0:  # the constrained optimum lies on a = 0, where the balanced loss is least at c = 0
            return 0.0, 0.0
    return float(theta[0]), float(theta[1])


def rank_test(logit_human_N: np.ndarray, logit_synthetic_N: np.ndarray) -> float:
    """One-sided p-value of "the detector ranks synthetic rows above human ones no better than chance" on
    held-out rows (Mann-Whitney U, normal approximation with the tie correction): the detector never saw
    them, so under the null the two samples are exchangeable."""
    from scipy import stats

    return float(stats.mannwhitneyu(logit_synthetic_N, logit_human_N, alternative="greater").pvalue)


def rescaled(det: Detector, a: float, c: float) -> Detector:
    """The detector whose logit is a · logit + c (the head is linear, so calibration rescales it)."""
    return dataclasses.replace(det, w_D=a * det.w_D, b=a * det.b + c)


_logits = jax.jit(logits)


def scored(tokens_NT, prompt_tokens: int) -> np.ndarray:
    """The positions a detector reads: `prompt_tokens`..T-1 (int32)."""
    tokens_NT = np.asarray(tokens_NT, np.int32)
    if not 0 <= prompt_tokens < tokens_NT.shape[1]:
        raise ValueError(f"prompt_tokens={prompt_tokens} leaves nothing to score in sequences of "
                         f"{tokens_NT.shape[1]} tokens; it must be in [0, T)")
    return tokens_NT[:, prompt_tokens:]


def logit_synthetic(det: Detector, tokens_NT, prompt_tokens: int = 0, rows: int | None = None) -> np.ndarray:
    """logit P(synthetic) `[N]` (float64 from float32), in fixed-size chunks of rows (the last one padded) so the
    pooled embeddings of a large set never sit in memory at once."""
    x_NT = scored(tokens_NT, prompt_tokens)
    N, T = x_NT.shape
    rows = rows or max(1, min(N, 2**22 // (T * det.w_D.shape[0])))
    out_N = np.empty(N, np.float64)
    for i in range(0, N, rows):
        chunk_RT = x_NT[i:i + rows]
        n = len(chunk_RT)
        padded_RT = np.pad(chunk_RT, ((0, rows - n), (0, 0)))
        out_N[i:i + n] = np.asarray(_logits(det, padded_RT), np.float64)[:n]
    return out_N


def prob_synthetic(det: Detector, tokens_NT, prompt_tokens: int = 0, rows: int | None = None) -> np.ndarray:
    """P(synthetic) `[N]` (float64, so 1 - p keeps its precision near p = 1)."""
    return 1.0 / (1.0 + np.exp(-logit_synthetic(det, tokens_NT, prompt_tokens, rows)))


def balanced_accuracy(p_human_N: np.ndarray, p_synthetic_N: np.ndarray) -> float:
    """Mean of the two classes' accuracies at threshold 1/2 (chance is 1/2 whatever the class sizes)."""
    if len(p_human_N) == 0 or len(p_synthetic_N) == 0:
        return float("nan")
    return 0.5 * (float(np.mean(p_human_N < 0.5)) + float(np.mean(p_synthetic_N >= 0.5)))


def split(key: jax.Array, n: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    """A random `holdout` fraction of rows 0..n-1 (rounded; at least one row stays for training):
    (train rows, held-out rows)."""
    order_N = np.asarray(jax.random.permutation(key, n))
    n_held = min(int(round(holdout * n)), n - 1)
    return order_N[n_held:], order_N[:n_held]


def train(key: jax.Array, human_NT, synthetic_NT, *, prompt_tokens: int = 0, steps: int = 200,
          lr: float = 3e-3, significance: float = 0.01, d_embed: int = 64, holdout: float = 0.2, vocab_size: int,
          batch: int = 256, bigram_buckets: int = 1 << 14) -> tuple[Detector, dict]:
    """Trains a detector of synthetic (label 1) vs human (label 0) sequences `[N, T]` (the classes may differ
    in size, not in T) on all but a random `holdout` fraction of each class.

    The detector is calibrated on the held-out rows (`calibrate`), so its scores are probabilities, and it is
    tested against chance there (`rank_test`): one whose p-value exceeds `significance` is replaced by the
    constant 1/2, so that a detector that cannot tell the classes apart (a perfect generator) leaves the
    resampling uniform instead of amplifying its noise into weights (1 - p)^bias.

    Returns the detector and a dict: `holdout_accuracy` and `train_accuracy` (balanced, threshold 1/2, of the
    calibrated detector before the chance test; nan without held-out rows), `holdout_human` /
    `holdout_synthetic` / `train_human` / `train_synthetic` (row counts), `final_loss` (the last step's minibatch
    loss), `chance_p_value` (`rank_test`; nan without held-out rows), `used` (False: it scores every row 1/2) and
    `calibration_scale`, `calibration_shift` (a, c of `calibrate`; 1, 0 without held-out rows).
    """
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout={holdout} must be in [0, 1)")
    if bigram_buckets & (bigram_buckets - 1):
        raise ValueError(f"bigram_buckets={bigram_buckets} must be 0 or a power of two")
    human_NT, synthetic_NT = scored(human_NT, prompt_tokens), scored(synthetic_NT, prompt_tokens)
    if len(human_NT) < 1 or len(synthetic_NT) < 1:
        raise ValueError(f"need both classes: {len(human_NT)} human and {len(synthetic_NT)} synthetic rows")
    k_init, k_split_h, k_split_s, k_fit = jax.random.split(key, 4)
    train_h, held_h = split(k_split_h, len(human_NT), holdout)
    train_s, held_s = split(k_split_s, len(synthetic_NT), holdout)
    det = init(k_init, vocab_size, d_embed, bigram_buckets)
    det, loss_S = fit(det, k_fit, jnp.asarray(human_NT[train_h]), jnp.asarray(synthetic_NT[train_s]),
                      jnp.float32(lr), steps=steps, batch=batch)
    a, c, p_chance = 1.0, 0.0, float("nan")
    if len(held_h) and len(held_s):  # calibrate on the held-out rows, and test the detector against chance there
        z_h, z_s = logit_synthetic(det, human_NT[held_h]), logit_synthetic(det, synthetic_NT[held_s])
        a, c = calibrate(z_h, z_s)
        p_chance = rank_test(z_h, z_s)
    det = rescaled(det, a, c)
    prob = lambda x_NT: prob_synthetic(det, x_NT)  # noqa: E731  (already cut to the scored positions)
    info = dict(
        holdout_accuracy=balanced_accuracy(prob(human_NT[held_h]), prob(synthetic_NT[held_s])),
        train_accuracy=balanced_accuracy(prob(human_NT[train_h]), prob(synthetic_NT[train_s])),
        holdout_human=len(held_h), holdout_synthetic=len(held_s),
        train_human=len(train_h), train_synthetic=len(train_s),
        final_loss=float(loss_S[-1]) if steps else float("nan"),
        chance_p_value=p_chance, used=not p_chance > significance, calibration_scale=a, calibration_shift=c,
    )
    if not info["used"]:  # no better than chance on rows it never saw: every score 1/2
        det = rescaled(det, 0.0, 0.0)
    return det, info


def cross_fitted(key: jax.Array, human_NT, candidates_MT, *, prompt_tokens: int = 0, **train_kw
                 ) -> tuple[np.ndarray, float, float]:
    """p_synthetic `[M]` of every candidate from a detector that never saw it (cross-fitting): one detector
    trained on the human rows against the second half of the candidates scores the first half, and one
    trained against the first half scores the second. Returns the scores, the two detectors' mean held-out
    balanced accuracy and the share of them that passed the chance test (0, 1/2 or 1; a detector that failed
    it scores its half 1/2). `train_kw`: `train`'s keyword arguments (steps, lr, d_embed, holdout, ...)."""
    M = len(candidates_MT)
    folds = (np.arange(M // 2), np.arange(M // 2, M))
    p_M, accuracy, used = np.empty(M), [], []
    for f, key_f in enumerate(jax.random.split(key, 2)):
        det, info = train(key_f, human_NT, candidates_MT[folds[1 - f]], prompt_tokens=prompt_tokens, **train_kw)
        p_M[folds[f]] = prob_synthetic(det, candidates_MT[folds[f]], prompt_tokens)
        accuracy.append(info["holdout_accuracy"])
        used.append(info["used"])
    return p_M, float(np.mean(accuracy)), float(np.mean(used))
