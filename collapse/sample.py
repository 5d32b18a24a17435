"""Batched autoregressive sampling with a KV cache: prefill once, then the whole decode loop in one `lax.scan`.

Temperature, top-k and top-p are traced scalars, so changing them never recompiles. Top-k and top-p look
only at the `candidates` most likely tokens (one `lax.top_k` per step instead of a full-vocabulary sort);
top-k is applied first, then top-p on the renormalised top-k distribution (the order Hugging Face uses).
Temperature 0 is greedy decoding.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx


def choose(logits_BV: jax.Array, key: jax.Array, temperature, top_k, top_p, candidates: int) -> jax.Array:
    """Draw one token per row from `softmax(logits / temperature)` restricted by top-k and top-p."""
    scaled_BV = logits_BV / jnp.maximum(temperature, 1e-6)

    def filtered():
        vals_BK, idx_BK = jax.lax.top_k(scaled_BV, candidates)
        rank_K = jnp.arange(candidates)
        in_top_k_K = (top_k == 0) | (rank_K < top_k)
        vals_BK = jnp.where(in_top_k_K, vals_BK, -jnp.inf)
        # Normalise over the top-k set, or over the whole vocabulary when top-k is off.
        log_norm_B1 = jnp.where(top_k > 0, jax.nn.logsumexp(vals_BK, axis=-1, keepdims=True),
                                jax.nn.logsumexp(scaled_BV, axis=-1, keepdims=True))
        p_BK = jnp.exp(vals_BK - log_norm_B1)
        mass_before_BK = jnp.cumsum(p_BK, axis=-1) - p_BK  # keep a token if the nucleus is not yet full
        vals_BK = jnp.where(mass_before_BK < top_p, vals_BK, -jnp.inf)
        pick_B = jax.random.categorical(key, vals_BK)
        return jnp.take_along_axis(idx_BK, pick_B[:, None], axis=-1)[:, 0]

    def plain():
        return jax.random.categorical(key, scaled_BV)

    sampled_B = jax.lax.cond((top_k > 0) | (top_p < 1), filtered, plain)
    return jnp.where(temperature > 0, sampled_B, jnp.argmax(logits_BV, axis=-1)).astype(jnp.int32)


def _generate(graphdef, params, prompt_BP, key, temperature, top_k, top_p, n_new: int, candidates: int):
    """Continue each prompt (BOS first) by `n_new` tokens `[B, n_new]`."""
    model = nnx.merge(graphdef, params)
    B, P = prompt_BP.shape
    cache = model.init_cache(B, P + n_new - 1)
    logits_BPV, cache = model.decode(prompt_BP, cache, 0)
    keys = jax.random.split(key, n_new)
    pick = partial(choose, temperature=temperature, top_k=top_k, top_p=top_p, candidates=candidates)
    first_B = pick(logits_BPV[:, -1], keys[0])

    def step(carry, inputs):
        token_B, cache = carry
        pos, key = inputs
        logits_B1V, cache = model.decode(token_B[:, None], cache, pos)
        next_B = pick(logits_B1V[:, 0], key)
        return (next_B, cache), next_B

    positions = P + jnp.arange(n_new - 1)
    _, rest_XB = jax.lax.scan(step, (first_B, cache), (positions, keys[1:]))
    return jnp.concatenate([first_B[:, None], rest_XB.T], axis=1)


@partial(jax.jit, static_argnums=(0, 7, 8))
def generate(graphdef, params, prompt_RBP, key_R, temperature, top_k, top_p, n_new: int, candidates: int):
    """`_generate` for R replicates at once (params, prompts and keys with a leading axis R)."""
    return jax.vmap(_generate, in_axes=(None, 0, 0, 0, None, None, None, None, None))(
        graphdef, params, prompt_RBP, key_R, temperature, top_k, top_p, n_new, candidates)
