"""Training: AdamW with warmup + cosine decay, one jitted chunk of steps at a time for all replicates at once.

The `TrainState(params, opt_state)` has a leading replicate axis R; clipping and Adam statistics stay per
replicate because the optimizer runs inside the map over replicates (`over_replicates`: vmap, or lax.map
on CPU devices). A chunk of `log_every` steps is one `lax.scan` in one compiled call with the state
donated, so the host only sees losses once per chunk. Batches are gathered by a separate small program, so
a training set that grows (regime=accumulate) never recompiles the step.

Training targets (`train.target`, README "Training targets"): hard (`lm_loss`, the tokens), or on the rows a
`Teacher` labels its next-token distributions, `soft_loss` with the teacher run in the step (online) or
`topk_soft_loss` against its top-k stored once per generation (`teacher_topk`); `distill_loss` per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from collapse.config import TrainConfig
from collapse.devices import Layout, abstract, over_replicates, single, to_host
from collapse.model import with_bos

class TrainState(NamedTuple):
    """What one training step reads and writes (a pytree: vmapped, donated and checkpointed whole)."""

    params: nnx.State
    opt_state: optax.OptState


def steps_per_epoch(n_sequences: int, batch_size: int) -> int:
    return n_sequences // batch_size


def total_steps(n_sequences: int, seq_len: int, cfg: TrainConfig) -> int:
    """Optimizer steps for one generation: the token budget if set, else `epochs` passes."""
    if cfg.tokens > 0:
        return math.ceil(cfg.tokens / (cfg.batch_size * seq_len))
    return max(1, math.ceil(cfg.epochs * steps_per_epoch(n_sequences, cfg.batch_size)))


def learning_rate(step: jax.Array, total: jax.Array, cfg: TrainConfig) -> jax.Array:
    """Linear warmup to `lr` over `warmup_fraction` of the steps, then cosine decay to `lr * min_lr_ratio`."""
    step = step.astype(jnp.float32)
    total = total.astype(jnp.float32)
    warmup = jnp.maximum(1.0, jnp.floor(cfg.warmup_fraction * total))
    progress = jnp.clip((step - warmup) / jnp.maximum(1.0, total - warmup), 0.0, 1.0)
    cosine = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + jnp.cos(jnp.pi * progress))
    return cfg.lr * jnp.where(step < warmup, (step + 1) / warmup, cosine)


DECAYED = ("kernel", "embedding")  # parameter names that get weight decay: Linear kernels and embeddings


def decays(path: tuple) -> bool:
    """Whether the parameter at `path` gets weight decay, decided by its name (the last dict key), not its rank:
    stacked layers (`scan_layers`) give LayerNorm scales and biases a layer axis, yet they must not decay."""
    names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey) and isinstance(k.key, str)]
    return bool(names) and names[-1] in DECAYED


def decay_mask(params):
    """A pytree of bools like `params`: True where the parameter gets weight decay (`decays`)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: decays(path), params)


def optimizer(cfg: TrainConfig, total: jax.Array | int = 1) -> optax.GradientTransformation:
    """Clip, then AdamW; weight decay on kernels and embeddings only (`decays`). `total` may be traced: no
    recompile per generation."""
    schedule = lambda count: learning_rate(count, jnp.asarray(total), cfg)  # noqa: E731
    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip) if cfg.grad_clip > 0 else optax.identity(),
        optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay, mask=decay_mask),
    )


def init_state(params: nnx.State, cfg: TrainConfig) -> TrainState:
    """A fresh optimizer state around a copy of `params` (the state is donated, the caller keeps `params`)."""
    return TrainState(jax.tree.map(jnp.copy, params), optimizer(cfg).init(params))


def lm_loss(graphdef: nnx.GraphDef, params: nnx.State, tokens_BT: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy (nats) of predicting every token from BOS and its prefix."""
    model = nnx.merge(graphdef, params)
    logits_BTV = model(with_bos(tokens_BT, model.bos))
    return optax.softmax_cross_entropy_with_integer_labels(logits_BTV, tokens_BT).mean()


# ------------------------------------------------------------------------------------ training targets
# README "Training targets". Per position: hard = -log p(token); soft = τ² · KL(q_τ ‖ p_τ), q_τ the teacher's
# and p_τ the student's next-token distribution at temperature τ (softmax(logits / τ); the τ² keeps gradient
# magnitudes comparable across τ, Hinton et al. 2015). Per row: soft rows (`Teacher.soft_RN`) take the soft
# loss (target=soft) or α · hard + (1 - α) · soft (target=mixed), the others the hard loss.


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
    """Mean loss of a batch with training targets: `batch` holds `tokens` `[B, T]`, `soft` `[B]` (bool: the
    rows that learn the teacher's distributions) and, for teacher_probs=topk, `topk_logp` / `topk_ids`
    `[B, T, k]`; for teacher_probs=online the teacher (frozen, no gradient) runs on the batch here."""
    model = nnx.merge(graphdef, params)
    tokens_BT = batch["tokens"]
    logits_BTV = model(with_bos(tokens_BT, model.bos))
    hard_B = optax.softmax_cross_entropy_with_integer_labels(logits_BTV, tokens_BT).mean(axis=1)
    tau = cfg.soft_temperature
    if "topk_logp" in batch:
        soft_BT = topk_soft_loss(logits_BTV, batch["topk_logp"], batch["topk_ids"], tau)
    else:
        teacher = nnx.merge(teacher_graphdef, jax.lax.stop_gradient(teacher_params))
        teacher_logits_BTV = jax.lax.stop_gradient(teacher(with_bos(tokens_BT, teacher.bos)))
        soft_BT = soft_loss(logits_BTV, teacher_logits_BTV, tau)
    alpha = cfg.hard_weight if cfg.target == "mixed" else 0.0
    distilled_B = alpha * hard_B + (1 - alpha) * soft_BT.mean(axis=1)
    return jnp.where(batch["soft"], distilled_B, hard_B).mean()


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
    split = 1 if layout.by_replicate else layout.n
    b = -(-min(batch, M) // split) * split
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


def _chunk(graphdef, cfg: TrainConfig, state: TrainState, batches_SB, active_S, total, loss_fn=None):
    """`S` steps of one replicate; inactive steps (padding of the last chunk) leave the state unchanged.
    `loss_fn(params, batch)`: default `lm_loss` on token batches `[S, B, T]`."""
    tx = optimizer(cfg, total)
    loss_fn = loss_fn or partial(lm_loss, graphdef)

    def step(state: TrainState, inputs):
        batch, active = inputs
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(optax.apply_updates(state.params, updates), opt_state)
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), loss

    return jax.lax.scan(step, state, (batches_SB, active_S))


@partial(jax.jit, static_argnums=(0, 1, 2, 7), donate_argnums=(3,))
def train_chunk(graphdef, cfg: TrainConfig, layout: Layout, state: TrainState, batches_RSB, active_S, total,
                teacher_graphdef=None, teacher_params_R=None):
    """Run S steps for all R replicates: returns the new state and the losses `[R, S]`.

    `batches_RSB`: token batches `[R, S, B, T]` (hard targets), or a dict of them with training targets
    (`distill_loss`); teacher_probs=online also passes the teacher's graphdef (static) and parameters `[R, ...]`
    (read, never donated or differentiated)."""
    if not isinstance(batches_RSB, dict):
        state, loss_RS = over_replicates(lambda s, b: _chunk(graphdef, cfg, s, b, active_S, total), layout, state,
                                        batches_RSB)
    else:
        def one(s, b, teacher_params):
            loss_fn = lambda p, batch: distill_loss(graphdef, p, batch, cfg, teacher_graphdef,  # noqa: E731
                                                    teacher_params)
            return _chunk(graphdef, cfg, s, b, active_S, total, loss_fn)

        state, loss_RS = over_replicates(one, layout, state, batches_RSB, teacher_params_R)
    return jax.lax.with_sharding_constraint(state, layout.params()), loss_RS


@partial(jax.jit, static_argnums=(0,))
def gather_batches(layout: Layout, data_RN, index_RSB: jax.Array):
    """The batches `[R, S, B, ...]` of every array of the pytree `data_RN` (`[R, N, ...]` each)."""
    def gather(data_RN):
        batches = jax.vmap(lambda data_N, index_SB: data_N[index_SB])(data_RN, index_RSB)
        return jax.lax.with_sharding_constraint(batches, layout.batch(2))

    return jax.tree.map(gather, data_RN)


def batch_order(rng: np.random.Generator, n_sequences: int, batch_size: int, steps: int) -> np.ndarray:
    """Sequence indices `[steps, B]`: a fresh permutation every epoch, the remainder of each dropped."""
    per_epoch = steps_per_epoch(n_sequences, batch_size)
    epochs = math.ceil(steps / per_epoch)
    order = [rng.permutation(n_sequences)[: per_epoch * batch_size] for _ in range(epochs)]
    return np.concatenate(order).reshape(-1, batch_size)[:steps].astype(np.int32)


@dataclass
class Checkpoints:
    """Mid-generation checkpoints: `save(step, {"state", "losses"})` every `every` steps (at chunk ends);
    `restored` is what an interrupted earlier attempt saved last, or None."""

    every: int
    save: Callable[[int, dict], None]
    restored: tuple[int, dict] | None = None


def abstract_checkpoint(params: nnx.State, cfg: TrainConfig, steps: int, layout: Layout | None = None) -> dict:
    """Shapes, dtypes and shardings of a mid-generation checkpoint, for restoring one."""
    layout = layout or single()
    R = jax.tree.leaves(params)[0].shape[0]
    state = abstract(jax.eval_shape(jax.vmap(partial(init_state, cfg=cfg)), params), layout.params())
    losses = jax.ShapeDtypeStruct((R, steps), jnp.float32, sharding=layout.replicated())
    return {"state": state, "losses": losses}


def fit(graphdef: nnx.GraphDef, params: nnx.State, data_RNT: np.ndarray, rngs: list[np.random.Generator],
        cfg: TrainConfig, seq_len: int, on_chunk: Callable[[int, np.ndarray], None] | None = None,
        checkpoints: Checkpoints | None = None, layout: Layout | None = None, teacher: Teacher | None = None
        ) -> tuple[nnx.State, np.ndarray]:
    """Train R replicates (params with leading axis R) on their own data `[R, N, T]`; fresh optimizer state.

    Returns the trained params and the losses `[R, steps]`. `on_chunk(steps_done, losses_RS)` is called
    once per finished chunk, one chunk behind the device so dispatch never waits for the host. With
    `checkpoints`, training resumes from `checkpoints.restored` and gives exactly the uninterrupted result
    (the batch order is fixed up front; a checkpoint holds the whole optimizer state). `layout` spreads
    replicates or batches over devices (default: one device). With a `teacher` (and `cfg.target` soft or
    mixed), its soft rows learn its distributions (`distill_loss`), online or from its stored top-k
    (`cfg.teacher_probs`); without one, every row trains on its tokens (`lm_loss`).
    """
    layout = layout or single()
    R, N, _ = data_RNT.shape
    teacher_graphdef = teacher_params = None
    if teacher is not None and cfg.target != "tokens":
        data = {"tokens": data_RNT, "soft": np.asarray(teacher.soft_RN, bool)}
        if cfg.teacher_probs == "topk":
            data["topk_logp"], data["topk_ids"] = teacher_topk(teacher, data_RNT, cfg.soft_temperature,
                                                               cfg.soft_top_k, cfg.batch_size, layout)
        else:
            teacher_graphdef, teacher_params = teacher.graphdef, layout.put(teacher.params, layout.params())
        data_RNT = data
    data_RNT = layout.put(data_RNT, layout.params())  # by replicate: each device its replicates' data
    steps, S = total_steps(N, seq_len, cfg), cfg.log_every
    index_RXB = np.stack([batch_order(rng, N, cfg.batch_size, steps) for rng in rngs])
    pad = -steps % S
    index_RXB = np.pad(index_RXB, ((0, 0), (0, pad), (0, 0)))
    active_X = np.arange(steps + pad) < steps
    losses_RX = np.full((R, steps), np.nan, np.float32)
    first = 0
    if checkpoints is not None and checkpoints.restored is not None:
        first, saved = checkpoints.restored
        state, losses_RX = saved["state"], np.array(to_host(saved["losses"]))
    else:
        state = jax.vmap(partial(init_state, cfg=cfg))(params)
    state = layout.put(state, layout.params())
    pending = None
    for start in range(first, steps + pad, S):
        index = layout.put(index_RXB[:, start:start + S], layout.params())
        batches = gather_batches(layout, data_RNT, index)
        active_S = jnp.asarray(active_X[start:start + S])
        if teacher_graphdef is None and teacher_params is None:
            state, loss_RS = train_chunk(graphdef, cfg, layout, state, batches, active_S, jnp.int32(steps))
        else:
            state, loss_RS = train_chunk(graphdef, cfg, layout, state, batches, active_S, jnp.int32(steps),
                                         teacher_graphdef, teacher_params)
        if pending is not None:
            _finish(pending, losses_RX, on_chunk)
        pending = (start, min(start + S, steps), loss_RS)
        end = start + S
        if checkpoints is not None and end < steps and end // checkpoints.every > start // checkpoints.every:
            _finish(pending, losses_RX, on_chunk)
            pending = None
            checkpoints.save(end, {"state": state, "losses": losses_RX})
    _finish(pending, losses_RX, on_chunk)
    return state.params, losses_RX


def _finish(pending, losses_RX: np.ndarray, on_chunk) -> None:
    start, done, loss_RS = pending
    losses_RX[:, start:done] = to_host(loss_RS)[:, : done - start]
    if on_chunk is not None:
        on_chunk(done, losses_RX[:, start:done])
