"""The transformer family: init / fit / sample / score for R replicates at once (leading axis R everywhere);
a `collapse.families.protocols.ModelFamily`.

Parameters are an `nnx.State` pytree; the static `graphdef` is split off once, so every jitted program
sees plain arrays and merges the module inside (no per-call graph traversal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from collapse import devices, distill, train, watermark
from collapse.errors import DataError
from collapse import sample as sampler
from collapse.config import SampleConfig, TrainConfig
from collapse.families import TransformerConfig
from collapse.devices import Layout, over_replicates, single, to_host
from collapse.model import (Transformer, divergence_sums, mean_next_token_probs, next_token_logprobs, sequence_logprob,
                            top_predictions)


@partial(jax.jit, static_argnums=(0, 1, 4))
def _logprob(graphdef, layout, params_R, tokens_RBT, skip):
    return over_replicates(lambda p, t: sequence_logprob(nnx.merge(graphdef, p), t, skip), layout, params_R,
                           tokens_RBT)


@partial(jax.jit, static_argnums=(0, 1))
def _top1(graphdef, layout, params_R, tokens_RBT):
    return over_replicates(lambda p, t: top_predictions(nnx.merge(graphdef, p), t), layout, params_R, tokens_RBT)


@partial(jax.jit, static_argnums=(0, 1, 5))
def _next_token_sum(graphdef, layout, params_R, tokens_RBT, weight_B, first):
    return over_replicates(lambda p, t: mean_next_token_probs(nnx.merge(graphdef, p), t, weight_B, first), layout,
                           params_R, tokens_RBT)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _divergence_sums(graphdef_a, graphdef_b, layout, params_a_R, params_b_R, tokens_RBT, weight_B):
    return over_replicates(lambda pa, pb, t: divergence_sums(nnx.merge(graphdef_a, pa), nnx.merge(graphdef_b, pb), t,
                                                            weight_B), layout, params_a_R, params_b_R, tokens_RBT)


@partial(jax.jit, static_argnums=(0, 1))
def _next_logprobs(graphdef, layout, params_R, prompts_RBP):
    return over_replicates(lambda p, t: next_token_logprobs(nnx.merge(graphdef, p), t), layout, params_R,
                           prompts_RBP)


def _params(cfg: TransformerConfig, vocab_size: int, key: jax.Array) -> nnx.State:
    return nnx.split(Transformer(cfg, vocab_size, rngs=nnx.Rngs(key)))[1]


@partial(jax.jit, static_argnums=(0, 1))
def _init(cfg: TransformerConfig, vocab_size: int, keys_R: jax.Array) -> nnx.State:
    """Fresh parameters, one set per key: one program per shape, whichever family object asks."""
    return jax.vmap(partial(_params, cfg, vocab_size))(keys_R)


def _batched(fn: Callable[[np.ndarray, int], jax.Array], x_RN: np.ndarray, batch: int, layout: Layout) -> np.ndarray:
    """`fn(slice, slice_number)` over fixed-size slices of axis 1 (the last zero-padded: one program serves
    all, `Layout.slice_size`)."""
    n = x_RN.shape[1]
    batch = layout.slice_size(batch, n)
    pad = -n % batch
    x_RN = np.pad(x_RN, [(0, 0), (0, pad)] + [(0, 0)] * (x_RN.ndim - 2))
    out = [to_host(fn(x_RN[:, i:i + batch], i // batch)) for i in range(0, n + pad, batch)]
    return np.concatenate(out, axis=1)[:, :n]


@dataclass
class TransformerFamily:
    cfg: TransformerConfig
    vocab_size: int  # the tokens it predicts; it also reads BOS (`bos`: the extra id V unless model.bos_token)
    layout: Layout = field(default_factory=single)  # where replicates / batches live (collapse.devices)
    graphdef: nnx.GraphDef = field(init=False)

    def __post_init__(self):
        abstract = nnx.eval_shape(lambda: Transformer(self.cfg, self.vocab_size, rngs=nnx.Rngs(0)))
        self.graphdef = nnx.split(abstract)[0]

    @property
    def bos(self) -> int:
        return self.vocab_size if self.cfg.bos_token < 0 else self.cfg.bos_token

    def init(self, keys_R: jax.Array) -> nnx.State:
        """Fresh parameters, one set per key."""
        return self.layout.put(_init(self.cfg, self.vocab_size, keys_R), self.layout.params())

    def pretrained(self, replicates: int) -> nnx.State:
        """The parameters of the model.path checkpoint (model=pretrained), one copy per replicate."""
        from collapse import pretrained

        if pretrained.digest(self.cfg.path) != self.cfg.sha256:
            raise DataError(self.cfg.path, "changed since the study read it (model.sha256)")
        state = nnx.split(nnx.eval_shape(lambda: Transformer(self.cfg, self.vocab_size, rngs=nnx.Rngs(0))))[1]
        hf = pretrained.read_config(self.cfg.path)
        nnx.replace_by_pure_dict(state, pretrained.read_params(self.cfg.path, hf, nnx.to_pure_dict(state)))
        stacked = jax.tree.map(lambda x: np.broadcast_to(x, (replicates, *x.shape)), state)
        return self.layout.put(stacked, self.layout.params())

    def parameter_count(self) -> int:
        """Parameters of one replicate's model."""
        shapes = jax.eval_shape(partial(_params, self.cfg, self.vocab_size), jax.random.key(0))
        return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))

    def abstract(self, replicates: int) -> nnx.State:
        """Shapes, dtypes and shardings of `init`'s output, for restoring checkpoints."""
        keys_R = jax.random.split(jax.random.key(0), replicates)
        shapes = jax.eval_shape(partial(_init, self.cfg, self.vocab_size), keys_R)
        return devices.abstract(shapes, self.layout.params())

    def fit(self, params_R, data_RNT: np.ndarray, rngs: list[np.random.Generator], cfg: TrainConfig,
            on_chunk=None, checkpoints: train.Checkpoints | None = None, teacher: distill.Teacher | None = None,
            weights_RN: np.ndarray | None = None) -> tuple[nnx.State, np.ndarray]:
        return train.fit(self.graphdef, params_R, data_RNT, rngs, cfg, data_RNT.shape[2], on_chunk, checkpoints,
                         self.layout, teacher, weights_RN)

    def sample(self, params_R, prompts_RNP: np.ndarray, keys_R: jax.Array, cfg: SampleConfig, n_new: int,
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Continue each prompt (without BOS; may be empty) by `n_new` tokens: `[R, N, n_new]` int32."""
        R, N, _ = prompts_RNP.shape
        bos_RN1 = np.full((R, N, 1), self.bos, prompts_RNP.dtype)
        prompts_RNP = np.concatenate([bos_RN1, prompts_RNP], axis=2)
        candidates = min(cfg.candidates, self.vocab_size)
        mark = watermark.of(cfg)

        layout = self.layout
        params_R = layout.put(params_R, layout.params())  # a no-op when they are in place already

        def one_batch(prompt_RBP, i):
            prompt_RBP = layout.put(prompt_RBP, layout.batch(1))
            if cfg.beam_size > 1:
                out = sampler.beam_search(self.graphdef, layout, params_R, prompt_RBP, n_new,
                                          min(cfg.beam_size, self.vocab_size), cfg.repetition_penalty)
            else:
                key_data = jax.vmap(lambda k: jax.random.key_data(jax.random.fold_in(k, i)))(keys_R)
                key_data = layout.put(key_data, layout.params())
                out = sampler.generate(self.graphdef, layout, params_R, prompt_RBP, key_data,
                                       jnp.float32(cfg.temperature), jnp.int32(cfg.top_k), jnp.float32(cfg.top_p),
                                       n_new, candidates, mark, cfg.repetition_penalty)
            if on_batch is not None:
                on_batch(prompt_RBP.shape[1])
            return out

        return _batched(one_batch, prompts_RNP, cfg.batch_size, layout).astype(np.int32)

    def logprob(self, params_R, tokens_RNT: np.ndarray, batch: int = 256, skip: int = 0) -> np.ndarray:
        """log p(sequence) `[R, N]` (float32), every token predicted from BOS and its prefix; with `skip` > 0
        the log-probability of the tokens after the first `skip` given those (a continuation given its prompt)."""
        params_R = self.layout.put(params_R, self.layout.params())
        put = lambda t: self.layout.put(t, self.layout.batch(1))  # noqa: E731
        return _batched(lambda t, _: _logprob(self.graphdef, self.layout, params_R, put(t), skip), tokens_RNT, batch,
                        self.layout)

    def top1(self, params_R, tokens_RNT: np.ndarray, batch: int = 256) -> np.ndarray:
        """Each model's most likely next token at every position of the sequences `[R, N, T]` (int32): how a
        reader of the text would continue it (the open-model watermark test, `collapse.watermark`)."""
        params_R = self.layout.put(params_R, self.layout.params())
        put = lambda t: self.layout.put(t, self.layout.batch(1))  # noqa: E731
        return _batched(lambda t, _: _top1(self.graphdef, self.layout, params_R, put(t)), tokens_RNT, batch,
                        self.layout)

    def next_token_mass(self, params_R, tokens_RNT: np.ndarray, batch: int = 256, first: int = 0) -> np.ndarray:
        """The mean predicted next-token distribution over positions first..T-1 of the N sequences of
        `tokens_RNT` `[R, V]` (float64): where each model puts its mass on that data, tail tokens included."""
        R, N, T = tokens_RNT.shape
        params_R = self.layout.put(params_R, self.layout.params())
        b = self.layout.slice_size(batch, N)
        total_RV = np.zeros((R, self.vocab_size))
        for i in range(0, N, b):  # fixed-size batches, the last one padded and masked: one program serves all
            chunk_RBT = tokens_RNT[:, i:i + b]
            valid = chunk_RBT.shape[1]
            chunk_RBT = self.layout.put(np.pad(chunk_RBT, [(0, 0), (0, b - valid), (0, 0)]), self.layout.batch(1))
            weight_B = self.layout.put((np.arange(b) < valid).astype(np.float32), self.layout.replicated())
            sum_RV = _next_token_sum(self.graphdef, self.layout, params_R, chunk_RBT, weight_B, first)
            total_RV += to_host(sum_RV).astype(np.float64)
        return total_RV / (N * (T - first))

    def next_token_logprobs(self, params_R, prompts_RNP: np.ndarray, batch: int = 1024) -> np.ndarray:
        """log p(. | BOS, prompt) after each whole prompt `[R, N, V]` (float32): e.g. a closed-book answer
        (`collapse.metrics.knowledge`)."""
        params_R = self.layout.put(params_R, self.layout.params())
        put = lambda t: self.layout.put(t, self.layout.batch(1))  # noqa: E731
        return _batched(lambda t, _: _next_logprobs(self.graphdef, self.layout, params_R, put(t)),
                        np.asarray(prompts_RNP, np.int32), batch, self.layout)


def divergences(a: TransformerFamily, params_a_R, b: TransformerFamily, params_b_R, tokens_RNT: np.ndarray,
                batch: int = 256) -> np.ndarray:
    """Per replicate the mean per-token KL(a ‖ b), KL(b ‖ a) and JS(a, b) `[R, 3]` (nats, float64) of two models'
    next-token distributions at every position of the sequences `tokens_RNT` (the same vocabulary): exact on
    those contexts. Replicate r of a against replicate r of b; fixed-size batches, the last padded and masked."""
    layout = a.layout
    R, N, T = tokens_RNT.shape
    params_a_R, params_b_R = (layout.put(p, layout.params()) for p in (params_a_R, params_b_R))
    B = layout.slice_size(batch, N)
    total_R3 = np.zeros((R, 3))
    for i in range(0, N, B):
        chunk_RBT = tokens_RNT[:, i:i + B]
        valid = chunk_RBT.shape[1]
        chunk_RBT = layout.put(np.pad(chunk_RBT, [(0, 0), (0, B - valid), (0, 0)]), layout.batch(1))
        weight_B = layout.put((np.arange(B) < valid).astype(np.float32), layout.replicated())
        total_R3 += to_host(_divergence_sums(a.graphdef, b.graphdef, layout, params_a_R, params_b_R, chunk_RBT,
                                             weight_B)).astype(np.float64)
    return total_R3 / (N * T)
