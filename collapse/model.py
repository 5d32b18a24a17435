"""Decoder-only pre-norm transformer in Flax NNX, with a KV-cache decode path for sampling.

Token ids 0..V-1 are data; id V is BOS, which the model reads but never predicts: the input embedding has
V + 1 rows and the output head V columns. A pretrained model's BOS is one of its own tokens instead
(`bos_token`: GPT-2's <|endoftext|>, OPT's </s>; the embedding then has V rows), and its head may be the
embedding transposed (`tied_head`). Positions are learned (GPT-2 style; OPT's table is read from row
`position_offset`). The attention math, with and without a KV cache, is `collapse.attention`'s.

Shape suffixes (the package's legend: collapse/__init__.py): B batch, T query positions, S cached positions,
D model width, F MLP width, A attention heads, H head width, V output vocabulary, X = B * A.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from collapse.attention import KV, cached_attention, self_attention, update_cache
from collapse.families import TransformerConfig


def _init(std: float) -> nnx.Initializer:
    return nnx.initializers.normal(stddev=std)


ACTIVATIONS = {"gelu": jax.nn.gelu, "relu": jax.nn.relu}  # gelu: the tanh form (GPT-2's gelu_new)


class Attention(nnx.Module):
    def __init__(self, cfg: TransformerConfig, dtype, rngs: nnx.Rngs):
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.qkv = nnx.Linear(d, 3 * d, dtype=dtype, kernel_init=_init(0.02), rngs=rngs)
        resid_std = 0.02 / math.sqrt(2 * cfg.n_layers)
        self.out = nnx.Linear(d, d, dtype=dtype, kernel_init=_init(resid_std), rngs=rngs)

    def __call__(self, x_BTD: jax.Array, kv: KV | None = None, pos: jax.Array | int = 0):
        B, T, D = x_BTD.shape
        A, H = self.n_heads, D // self.n_heads
        q_BTAH, k_BTAH, v_BTAH = jnp.split(self.qkv(x_BTD).reshape(B, T, 3 * A, H), 3, axis=2)
        if kv is None:  # training / scoring: causal attention over the T positions
            y_BTAH = self_attention(q_BTAH, k_BTAH, v_BTAH)
        else:  # decoding: write this chunk into the cache at `pos`, attend to everything written so far
            kv = update_cache(kv, k_BTAH, v_BTAH, pos)
            y_BTAH = cached_attention(q_BTAH, *kv, pos)
        return self.out(y_BTAH.reshape(B, T, D)), kv


class Block(nnx.Module):
    def __init__(self, cfg: TransformerConfig, dtype, rngs: nnx.Rngs):
        d = cfg.d_model
        self.ln1 = nnx.LayerNorm(d, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.attn = Attention(cfg, dtype, rngs)
        self.ln2 = nnx.LayerNorm(d, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.up = nnx.Linear(d, cfg.d_ff, dtype=dtype, kernel_init=_init(0.02), rngs=rngs)
        resid_std = 0.02 / math.sqrt(2 * cfg.n_layers)
        self.down = nnx.Linear(cfg.d_ff, d, dtype=dtype, kernel_init=_init(resid_std), rngs=rngs)
        self.activation = ACTIVATIONS[cfg.activation]

    def __call__(self, x_BTD: jax.Array, kv: KV | None = None, pos: jax.Array | int = 0):
        h_BTD, kv = self.attn(self.ln1(x_BTD), kv, pos)
        x_BTD = x_BTD + h_BTD
        x_BTD = x_BTD + self.down(self.activation(self.up(self.ln2(x_BTD))))
        return x_BTD, kv


class Transformer(nnx.Module):
    def __init__(self, cfg: TransformerConfig, vocab_size: int, *, rngs: nnx.Rngs):
        dtype = jnp.dtype(cfg.dtype)
        self.vocab_size, self.bos_token, self.offset = vocab_size, cfg.bos_token, cfg.position_offset
        rows = vocab_size + (cfg.bos_token < 0)  # the extra BOS id V, where BOS is not a token of the vocabulary
        self.tok_embed = nnx.Embed(rows, cfg.d_model, dtype=dtype, embedding_init=_init(0.02), rngs=rngs)
        self.pos_embed = nnx.Embed(cfg.position_offset + cfg.context, cfg.d_model, dtype=dtype,
                                   embedding_init=_init(0.01), rngs=rngs)
        self.scan_layers = cfg.scan_layers
        if cfg.scan_layers:  # one Block whose parameters carry a leading layer axis, run by lax.scan
            @nnx.split_rngs(splits=cfg.n_layers)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def stack(rngs: nnx.Rngs) -> Block:
                return Block(cfg, dtype, rngs)

            self.blocks = stack(rngs)
        else:
            self.blocks = nnx.List([Block(cfg, dtype, rngs) for _ in range(cfg.n_layers)])
        self.n_layers, self.n_heads = cfg.n_layers, cfg.n_heads
        self.ln_f = nnx.LayerNorm(cfg.d_model, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.head = None if cfg.tied_head else nnx.Linear(cfg.d_model, vocab_size, use_bias=False, dtype=dtype,
                                                          kernel_init=_init(0.02), rngs=rngs)

    @property
    def bos(self) -> int:
        return self.vocab_size if self.bos_token < 0 else self.bos_token

    def _embed(self, tokens_BT: jax.Array, pos: jax.Array | int) -> jax.Array:
        positions_T = self.offset + pos + jnp.arange(tokens_BT.shape[1])
        return self.tok_embed(tokens_BT) + self.pos_embed(positions_T)[None]

    def _logits(self, x_BTD: jax.Array) -> jax.Array:
        h_BTD = self.ln_f(x_BTD)
        if self.head is None:  # tied: the embedding's rows of the V tokens it predicts
            return self.tok_embed.attend(h_BTD)[..., : self.vocab_size].astype(jnp.float32)
        return self.head(h_BTD).astype(jnp.float32)

    def _blocks(self, x_BTD: jax.Array, cache, pos):
        """All blocks; `cache` is a list of per-layer (k, v), or (k, v) stacked over layers when scanning."""
        if not self.scan_layers:
            new_cache = []
            for block, kv in zip(self.blocks, cache or [None] * self.n_layers):
                x_BTD, kv = block(x_BTD, kv, pos)
                new_cache.append(kv)
            return x_BTD, new_cache
        graphdef, layers = nnx.split(self.blocks)

        def layer(x_BTD, inputs):
            params, kv = inputs
            return nnx.merge(graphdef, params)(x_BTD, kv, pos)

        return jax.lax.scan(layer, x_BTD, (layers, cache))

    def __call__(self, tokens_BT: jax.Array) -> jax.Array:
        """Next-token logits `[B, T, V]` (float32) for inputs starting at position 0."""
        x_BTD, _ = self._blocks(self._embed(tokens_BT, 0), None, 0)
        return self._logits(x_BTD)

    def decode(self, tokens_BT: jax.Array, cache, pos: jax.Array | int):
        """Logits for `tokens_BT` at positions pos..pos+T-1 given everything before them in `cache`."""
        x_BTD, cache = self._blocks(self._embed(tokens_BT, pos), cache, pos)
        return self._logits(x_BTD), cache

    def init_cache(self, batch: int, length: int):
        """Preallocated keys and values `[B * A, S, H]`: one (k, v) pair per layer (stacked `[L, ...]` when
        the layers are scanned)."""
        d = self.tok_embed.features
        dtype = self.tok_embed.dtype or jnp.float32
        shape = (batch * self.n_heads, length, d // self.n_heads)
        if self.scan_layers:
            stacked = (self.n_layers, *shape)
            return jnp.zeros(stacked, dtype), jnp.zeros(stacked, dtype)
        return [(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)) for _ in range(self.n_layers)]


def select_rows(cache, rows_B: jax.Array, n_heads: int):
    """The cache of batch rows `rows_B` (repeats allowed), for caches of any layout `init_cache` makes."""

    def one(c_XSH):  # [..., B * A, S, H], with a leading layer axis when the layers are scanned
        lead = c_XSH.shape[:-3]
        c = c_XSH.reshape(*lead, -1, n_heads, *c_XSH.shape[-2:])
        c = jnp.take(c, rows_B, axis=len(lead))
        return c.reshape(*lead, -1, *c_XSH.shape[-2:])

    return jax.tree.map(one, cache)


def with_bos(tokens_BT: jax.Array, bos: int) -> jax.Array:
    """Model inputs for scoring `tokens_BT`: BOS followed by all but the last token."""
    bos_B1 = jnp.full((tokens_BT.shape[0], 1), bos, tokens_BT.dtype)
    return jnp.concatenate([bos_B1, tokens_BT[:, :-1]], axis=1)


def sequence_logprob(model: Transformer, tokens_BT: jax.Array, skip: int = 0) -> jax.Array:
    """log p(x_1..x_T) of each sequence `[B]`, every token predicted from BOS and its prefix; with `skip` > 0,
    log p(x_{skip+1}..x_T | x_1..x_skip): the first `skip` tokens (a prompt) are read but not scored."""
    logp_BTV = jax.nn.log_softmax(model(with_bos(tokens_BT, model.bos)))
    return jnp.take_along_axis(logp_BTV, tokens_BT[..., None], axis=-1)[:, skip:, 0].sum(axis=-1)


def top_predictions(model: Transformer, tokens_BT: jax.Array) -> jax.Array:
    """The most likely next token at every position `[B, T]` (int32): position t's given BOS and x_<t."""
    return jnp.argmax(model(with_bos(tokens_BT, model.bos)), axis=-1).astype(jnp.int32)


def mean_next_token_probs(model: Transformer, tokens_BT: jax.Array, weight_B: jax.Array, first: int = 0
                          ) -> jax.Array:
    """sum_b weight_b sum_{t >= first} p(. | BOS, x_<t) `[V]`: the model's predicted next-token distributions
    at positions first..T-1 of the weighted sequences, summed (weight 0 drops a padding row)."""
    probs_BTV = jax.nn.softmax(model(with_bos(tokens_BT, model.bos))[:, first:])
    return jnp.einsum("btv,b->v", probs_BTV, weight_B)


def divergence_sums(model_a: Transformer, model_b: Transformer, tokens_BT: jax.Array, weight_B: jax.Array
                    ) -> jax.Array:
    """Σ over the weighted sequences' positions of KL(p_a ‖ p_b), KL(p_b ‖ p_a) and JS(p_a, p_b) of the two
    models' next-token distributions given BOS and the same prefix `[3]` (nats; weight 0 drops a padding row)."""
    logp_a_BTV = jax.nn.log_softmax(model_a(with_bos(tokens_BT, model_a.bos)).astype(jnp.float32))
    logp_b_BTV = jax.nn.log_softmax(model_b(with_bos(tokens_BT, model_b.bos)).astype(jnp.float32))
    p_a_BTV, p_b_BTV = jnp.exp(logp_a_BTV), jnp.exp(logp_b_BTV)
    logm_BTV = jnp.log(0.5 * (p_a_BTV + p_b_BTV))
    kl = lambda p_BTV, logp_BTV, logq_BTV: jnp.sum(p_BTV * (logp_BTV - logq_BTV), axis=-1)  # noqa: E731
    ab_BT, ba_BT = kl(p_a_BTV, logp_a_BTV, logp_b_BTV), kl(p_b_BTV, logp_b_BTV, logp_a_BTV)
    js_BT = 0.5 * (kl(p_a_BTV, logp_a_BTV, logm_BTV) + kl(p_b_BTV, logp_b_BTV, logm_BTV))
    return jnp.stack([jnp.einsum("bt,b->", x_BT, weight_B) for x_BT in (ab_BT, ba_BT, js_BT)])


def next_token_logprobs(model: Transformer, prompts_BP: jax.Array) -> jax.Array:
    """log p(. | BOS, x_1..x_P) `[B, V]`: the model's next-token distribution after each whole prompt."""
    bos_B1 = jnp.full((prompts_BP.shape[0], 1), model.bos, prompts_BP.dtype)
    return jax.nn.log_softmax(model(jnp.concatenate([bos_B1, prompts_BP], axis=1))[:, -1])
