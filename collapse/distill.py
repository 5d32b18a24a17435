"""Training targets (`train.target`, docs/training-targets.md): the losses of rows that learn a teacher's
next-token distributions instead of (or beside) their tokens, and the teacher's stored top-k.

Per position: hard = -log p(token); soft = τ² · KL(q_τ ‖ p_τ), q_τ the teacher's and p_τ the student's next-token
distribution at temperature τ (softmax(logits / τ); the τ² keeps gradient magnitudes comparable across τ,
Hinton et al. 2015). Per row: soft rows (`Teacher.soft_RN`) take the soft loss (target=soft) or
α · hard + (1 - α) · soft (target=mixed), the others the hard loss. The teacher runs in the train step
(teacher_probs=online, `distill_loss`) or its top-k is computed once per generation (`teacher_topk`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from collapse.config import TrainConfig
from collapse.devices import Layout, over_replicates, single, to_host
from collapse.model import with_bos


def soft_loss(student_logits_BTV: jax.Array, teacher_logits_BTV: jax.Array, tau: float) -> jax.Array:
    """τ² · KL(softmax(teacher / τ) ‖ softmax(student / τ)) per position `[B, T]` (nats)."""
    teacher_logp_BTV = jax.nn.log_softmax(teacher_logits_BTV / tau)
    student_logp_BTV = jax.nn.log_softmax(student_logits_BTV / tau)
    kl_BT = jnp.sum(jnp.exp(teacher_logp_BTV) * (teacher_logp_BTV - student_logp_BTV), axis=-1)
    return tau**2 * kl_BT


def topk_soft_loss(student_logits_BTV: jax.Array, topk_logp_BTK: jax.Array, topk_ids_BTK: jax.Array,
                   tau: float) -> jax.Array:
    """`soft_loss` against the teacher's top-k log-probabilities at temperature τ (`teacher_topk`): the target
    q holds the k stored probabilities as they are and spreads the rest of the mass, 1 - Σ top-k, uniformly
    over the other V - k tokens. With k = V it is `soft_loss` exactly (up to float rounding)."""
    V, K = student_logits_BTV.shape[-1], topk_logp_BTK.shape[-1]
    student_logp_BTV = jax.nn.log_softmax(student_logits_BTV / tau)
    student_topk_BTK = jnp.take_along_axis(student_logp_BTV, topk_ids_BTK, axis=-1)
    q_BTK = jnp.exp(topk_logp_BTK)
    kl_BT = jnp.sum(q_BTK * (topk_logp_BTK - student_topk_BTK), axis=-1)
    if K < V:  # the other V - k tokens, each with probability r = (1 - Σ top-k) / (V - k)
        rest_BT = jnp.maximum(1.0 - q_BTK.sum(-1), 0.0)
        r_BT = rest_BT / (V - K)
        others_BT = student_logp_BTV.sum(-1) - student_topk_BTK.sum(-1)  # Σ log p over the other tokens
        kl_BT = kl_BT + jax.scipy.special.xlogy(rest_BT, r_BT) - r_BT * others_BT
    return tau**2 * kl_BT


def distill_loss(graphdef: nnx.GraphDef, params: nnx.State, batch: dict, cfg: TrainConfig,
                 teacher_graphdef: nnx.GraphDef | None = None, teacher_params: nnx.State | None = None) -> jax.Array:
    """Mean loss of a batch with per-row training targets or weights: `batch` holds `tokens` `[B, T]` and, with a
    teacher, `soft` `[B]` (bool: the rows that learn the teacher's distributions) and, for teacher_probs=topk,
    `topk_logp` / `topk_ids` `[B, T, k]` (for teacher_probs=online the teacher, frozen, no gradient, runs on the
    batch here); with `weight` `[B]` (`regime.human_weight`), each row's loss counts that many times."""
    model = nnx.merge(graphdef, params)
    tokens_BT = batch["tokens"]
    logits_BTV = model(with_bos(tokens_BT, model.bos))
    loss_B = optax.softmax_cross_entropy_with_integer_labels(logits_BTV, tokens_BT).mean(axis=1)
    if "soft" in batch:
        tau = cfg.soft_temperature
        if "topk_logp" in batch:
            soft_BT = topk_soft_loss(logits_BTV, batch["topk_logp"], batch["topk_ids"], tau)
        else:
            teacher = nnx.merge(teacher_graphdef, jax.lax.stop_gradient(teacher_params))
            teacher_logits_BTV = jax.lax.stop_gradient(teacher(with_bos(tokens_BT, teacher.bos)))
            soft_BT = soft_loss(logits_BTV, teacher_logits_BTV, tau)
        alpha = cfg.hard_weight if cfg.target == "mixed" else 0.0
        distilled_B = alpha * loss_B + (1 - alpha) * soft_BT.mean(axis=1)
        loss_B = jnp.where(batch["soft"], distilled_B, loss_B)
    if "weight" in batch:
        loss_B = loss_B * batch["weight"]
    return loss_B.mean()


@dataclass(frozen=True)
class Teacher:
    """The model whose next-token distributions soft rows learn: its graphdef (it may differ from the
    student's), its parameters `[R, ...]` (replicate r teaches replicate r) and the rows `[R, N]` (bool)
    of the training set that get soft targets."""

    graphdef: nnx.GraphDef
    params: nnx.State
    soft_RN: np.ndarray


@partial(jax.jit, static_argnums=(0, 1, 4, 5))
def _topk(graphdef, layout: Layout, params_R, tokens_RBT, tau: float, k: int):
    def one(params, tokens_BT):
        model = nnx.merge(graphdef, params)
        logp_BTV = jax.nn.log_softmax(model(with_bos(tokens_BT, model.bos)) / tau)
        return jax.lax.top_k(logp_BTV, k)

    return over_replicates(one, layout, params_R, tokens_RBT)


def teacher_topk(teacher: Teacher, data_RNT: np.ndarray, tau: float, k: int, batch: int,
                 layout: Layout | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's top-k log-probabilities at temperature τ and their token ids at every position of its
    soft rows, `[R, N, T, k]` float32 and int32 (zeros in the other rows, which never read them). One
    jitted program over fixed-size slices of each replicate's soft rows (the last slice padded)."""
    layout = layout or single()
    R, N, T = data_RNT.shape
    rows_R = [np.flatnonzero(s) for s in teacher.soft_RN]
    M = max(len(rows) for rows in rows_R)
    logp_RNTK = np.zeros((R, N, T, k), np.float32)
    ids_RNTK = np.zeros((R, N, T, k), np.int32)
    if M == 0:
        return logp_RNTK, ids_RNTK
    b = layout.slice_size(batch, M)
    index_RM = np.stack([np.pad(rows, (0, -(-M // b) * b - len(rows))) for rows in rows_R])  # padded with row 0
    params_R = layout.put(teacher.params, layout.params())
    for i in range(0, index_RM.shape[1], b):
        index_RB = index_RM[:, i:i + b]
        tokens_RBT = layout.put(np.take_along_axis(data_RNT, index_RB[:, :, None], axis=1), layout.batch(1))
        logp, ids = _topk(teacher.graphdef, layout, params_R, tokens_RBT, float(tau), k)
        logp, ids = to_host(logp), to_host(ids)
        for r, rows in enumerate(rows_R):
            valid = rows[i:i + b]
            logp_RNTK[r, valid], ids_RNTK[r, valid] = logp[r, : len(valid)], ids[r, : len(valid)]
    return logp_RNTK, ids_RNTK
