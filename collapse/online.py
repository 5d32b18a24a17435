"""Online self-training (Herel & Mikolov 2024, "Collapse of self-trained language models"; their code
DavidHerel/collapse-lm-iclr): one update samples one sequence from the current model and takes exactly one
optimiser step on a random window of it, the optimiser state carried from update to update.

A chunk of updates is one `lax.scan` in one compiled call for all replicates, the state donated: no Python
loop and no host sync per update. Update u's key is `fold_in(key, u)`, so the numbers do not depend on how the
updates are cut into chunks (`first` is the chunk's first update). The optimiser is `collapse.train`'s (clip,
then AdamW, weight decay on kernels and embeddings) at a constant learning rate (`constant`).

Shape suffixes: the package's (collapse/__init__.py), and U the updates of one chunk, W a window's positions.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from collapse.config import SampleConfig, TrainConfig
from collapse.devices import Layout, over_replicates
from collapse.sample import generate_replicate
from collapse.train import TrainState, lm_loss, optimizer
from collapse.watermark import Watermark


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How an update samples its sequence (static: part of the compiled program's key)."""

    temperature: float
    top_k: int
    top_p: float
    candidates: int
    repetition_penalty: float = 1.0

    @classmethod
    def of(cls, cfg: SampleConfig, vocab_size: int) -> Sampling:
        return cls(cfg.temperature, cfg.top_k, cfg.top_p, min(cfg.candidates, vocab_size), cfg.repetition_penalty)


def constant(cfg: TrainConfig, lr: float) -> TrainConfig:
    """`cfg`'s optimiser (clip, betas, weight decay) at the constant learning rate `lr` (`learning_rate` with
    no warmup and no decay), one sequence a step."""
    return dataclasses.replace(cfg, lr=lr, warmup_fraction=0.0, warmup_steps=0, min_lr_ratio=1.0, batch_size=1)


def update(graphdef: nnx.GraphDef, cfg: TrainConfig, sampling: Sampling, bos: int, seq_len: int, window: int,
           state: TrainState, key: jax.Array) -> tuple[TrainState, tuple[jax.Array, jax.Array, jax.Array]]:
    """One update: sample `seq_len` tokens from BOS with `state.params`, one optimiser step on the window of
    `window` tokens starting at a uniform position (trained as a sequence of its own: BOS, then the window).
    Returns the new state and (the sequence `[T]`, the window's start, the step's loss)."""
    sample_key, start_key = jax.random.split(key)
    prompt_11 = jnp.full((1, 1), bos, jnp.int32)
    tokens_1T = generate_replicate(graphdef, state.params, prompt_11, sample_key, sampling.temperature, sampling.top_k,
                                   sampling.top_p, seq_len, sampling.candidates, Watermark(),
                                   sampling.repetition_penalty)
    start = jax.random.randint(start_key, (), 0, seq_len - window + 1)
    window_1W = jax.lax.dynamic_slice(tokens_1T, (0, start), (1, window))
    loss, grads = jax.value_and_grad(partial(lm_loss, graphdef))(state.params, window_1W)
    tx = optimizer(cfg)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state), (tokens_1T[0], start, loss)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5, 6, 7), donate_argnums=(8,))
def updates(graphdef: nnx.GraphDef, cfg: TrainConfig, sampling: Sampling, layout: Layout, bos: int, seq_len: int,
            window: int, n: int, state_R: TrainState, key_data_R: jax.Array, first: jax.Array):
    """Updates first .. first + n - 1 of every replicate (update u keyed by `fold_in(key, u)`; raw key data
    `[R, ...]`). Returns the new state and (sequences `[R, U, T]`, window starts `[R, U]`, losses `[R, U]`)."""
    def chain(state, key_data):
        key = jax.random.wrap_key_data(key_data)

        def step(state, u):
            return update(graphdef, cfg, sampling, bos, seq_len, window, state, jax.random.fold_in(key, u))

        return jax.lax.scan(step, state, first + jnp.arange(n))

    state_R, out = over_replicates(chain, layout, state_R, key_data_R)
    return jax.lax.with_sharding_constraint(state_R, layout.params()), out
