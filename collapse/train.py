"""Training: AdamW with warmup + cosine decay, one jitted chunk of steps at a time for all replicates at once.

The `TrainState(params, opt_state)` has a leading replicate axis R; clipping and Adam statistics stay per
replicate because the optimizer runs inside the map over replicates (`over_replicates`: vmap, or lax.map
on CPU devices). A chunk of `log_every` steps is one `lax.scan` in one compiled call with the state
donated, so the host only sees losses once per chunk. Batches are gathered by a separate small program, so
a training set that grows (regime=accumulate) never recompiles the step.

Training targets (`train.target`): hard (`lm_loss`, the tokens), or on the rows a `Teacher` labels its
next-token distributions (`collapse.distill`: `distill_loss` per batch).

Shape suffixes: the package's (collapse/__init__.py), and I the steps of one compiled chunk (`log_every`), X all
steps of a generation padded to whole chunks.
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
from collapse.distill import Teacher, distill_loss, teacher_topk
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
    """Linear warmup to `lr` over `warmup_fraction` of the steps (or `warmup_steps`), then cosine decay to
    `lr * min_lr_ratio`."""
    step = step.astype(jnp.float32)
    total = total.astype(jnp.float32)
    warmup = jnp.float32(cfg.warmup_steps) if cfg.warmup_steps else jnp.maximum(1.0, jnp.floor(cfg.warmup_fraction
                                                                                               * total))
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


def _chunk(graphdef, cfg: TrainConfig, state: TrainState, batches_IB, active_I, total, loss_fn=None):
    """`I` steps of one replicate; inactive steps (padding of the last chunk) leave the state unchanged.
    `loss_fn(params, batch)`: default `lm_loss` on token batches `[I, B, T]`."""
    tx = optimizer(cfg, total)
    loss_fn = loss_fn or partial(lm_loss, graphdef)

    def step(state: TrainState, inputs):
        batch, active = inputs
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(optax.apply_updates(state.params, updates), opt_state)
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), loss

    return jax.lax.scan(step, state, (batches_IB, active_I))


@partial(jax.jit, static_argnums=(0, 1, 2, 7), donate_argnums=(3,))
def train_chunk(graphdef, cfg: TrainConfig, layout: Layout, state: TrainState, batches_RIB, active_I, total,
                teacher_graphdef=None, teacher_params_R=None):
    """Run I steps for all R replicates: returns the new state and the losses `[R, I]`.

    `batches_RIB`: token batches `[R, I, B, T]` (hard targets), or a dict of them with training targets or row
    weights (`distill_loss`); teacher_probs=online also passes the teacher's graphdef (static) and parameters `[R, ...]`
    (read, never donated or differentiated)."""
    if not isinstance(batches_RIB, dict):
        state, loss_RI = over_replicates(lambda s, b: _chunk(graphdef, cfg, s, b, active_I, total), layout, state,
                                        batches_RIB)
    else:
        def one(s, b, teacher_params):
            loss_fn = lambda p, batch: distill_loss(graphdef, p, batch, cfg, teacher_graphdef,  # noqa: E731
                                                    teacher_params)
            return _chunk(graphdef, cfg, s, b, active_I, total, loss_fn)

        state, loss_RI = over_replicates(one, layout, state, batches_RIB, teacher_params_R)
    return jax.lax.with_sharding_constraint(state, layout.params()), loss_RI


@partial(jax.jit, static_argnums=(0,))
def gather_batches(layout: Layout, data_RN, index_RIB: jax.Array):
    """The batches `[R, I, B, ...]` of every array of the pytree `data_RN` (`[R, N, ...]` each)."""
    def gather(data_RN):
        batches = jax.vmap(lambda data_N, index_IB: data_N[index_IB])(data_RN, index_RIB)
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
        checkpoints: Checkpoints | None = None, layout: Layout | None = None, teacher: Teacher | None = None,
        weights_RN: np.ndarray | None = None) -> tuple[nnx.State, np.ndarray]:
    """Train R replicates (params with leading axis R) on their own data `[R, N, T]`; fresh optimizer state.

    Returns the trained params and the losses `[R, steps]`. `on_chunk(steps_done, losses_RI)` is called
    once per finished chunk, one chunk behind the device so dispatch never waits for the host. With
    `checkpoints`, training resumes from `checkpoints.restored` and gives exactly the uninterrupted result
    (the batch order is fixed up front; a checkpoint holds the whole optimizer state). `layout` spreads
    replicates or batches over devices (default: one device). With a `teacher` (and `cfg.target` soft or
    mixed), its soft rows learn its distributions (`distill_loss`), online or from its stored top-k
    (`cfg.teacher_probs`); without one, every row trains on its tokens (`lm_loss`). `weights_RN` (mean 1 over a
    replicate's rows: `regime.human_weight`) weights each row's loss.
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
    if weights_RN is not None:
        data_RNT = {**(data_RNT if isinstance(data_RNT, dict) else {"tokens": data_RNT}),
                    "weight": np.asarray(weights_RN, np.float32)}
    data_RNT = layout.put(data_RNT, layout.params())  # by replicate: each device its replicates' data
    steps, I = total_steps(N, seq_len, cfg), cfg.log_every
    index_RXB = np.stack([batch_order(rng, N, cfg.batch_size, steps) for rng in rngs])
    pad = -steps % I
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
    for start in range(first, steps + pad, I):
        index = layout.put(index_RXB[:, start:start + I], layout.params())
        batches = gather_batches(layout, data_RNT, index)
        active_I = jnp.asarray(active_X[start:start + I])
        if teacher_graphdef is None and teacher_params is None:
            state, loss_RI = train_chunk(graphdef, cfg, layout, state, batches, active_I, jnp.int32(steps))
        else:
            state, loss_RI = train_chunk(graphdef, cfg, layout, state, batches, active_I, jnp.int32(steps),
                                         teacher_graphdef, teacher_params)
        if pending is not None:
            _finish(pending, losses_RX, on_chunk)
        pending = (start, min(start + I, steps), loss_RI)
        end = start + I
        if checkpoints is not None and end < steps and end // checkpoints.every > start // checkpoints.every:
            _finish(pending, losses_RX, on_chunk)
            pending = None
            checkpoints.save(end, {"state": state, "losses": losses_RX})
    _finish(pending, losses_RX, on_chunk)
    return state.params, losses_RX


def _finish(pending, losses_RX: np.ndarray, on_chunk) -> None:
    start, done, loss_RI = pending
    losses_RX[:, start:done] = to_host(loss_RI)[:, : done - start]
    if on_chunk is not None:
        on_chunk(done, losses_RX[:, start:done])
