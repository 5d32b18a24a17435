"""Causal self-attention for training and scoring, with the backward pass written out.

Differentiating softmax attention automatically gives XLA a backward pass whose row-sum of dP * P is fused
into the matmul that makes dP; on the CPU that fusion ran at ~6 GFLOP/s and was the slowest operation of
the whole training step. The backward here is the one FlashAttention uses: with D = rowsum(dY * Y), the
score gradient is dS = P * (dP - D), a plain element-wise product, and the row sum is over head width H
instead of key positions S. Same numbers as `jax.nn.dot_product_attention(..., is_causal=True)` to float32
rounding (tests/test_attention.py); training 7-14 % faster on 2 CPU cores (results/benchmark.md).

Shape suffixes: B batch, T query positions, S key positions (S = T), N heads, H head width.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _heads_first(a_BTNH: jax.Array) -> jax.Array:
    return a_BTNH.transpose(0, 2, 1, 3)


def _forward(q_BTNH, k_BTNH, v_BTNH):
    T, H = q_BTNH.shape[1], q_BTNH.shape[3]
    q_BNTH = _heads_first(q_BTNH * jnp.asarray(1 / math.sqrt(H), q_BTNH.dtype))
    k_BNSH, v_BNSH = _heads_first(k_BTNH), _heads_first(v_BTNH)
    scores_BNTS = jnp.einsum("bnth,bnsh->bnts", q_BNTH, k_BNSH).astype(jnp.float32)
    causal_TS = jnp.tril(jnp.ones((T, T), bool))
    p_BNTS = jax.nn.softmax(jnp.where(causal_TS, scores_BNTS, -jnp.inf), axis=-1).astype(v_BNSH.dtype)
    y_BNTH = jnp.einsum("bnts,bnsh->bnth", p_BNTS, v_BNSH)
    return _heads_first(y_BNTH), (q_BNTH, k_BNSH, v_BNSH, p_BNTS, y_BNTH)


@jax.custom_vjp
def causal_attention(q_BTNH: jax.Array, k_BTNH: jax.Array, v_BTNH: jax.Array) -> jax.Array:
    """softmax(q kᵀ / sqrt(H) + causal mask) v per head: `[B, T, N, H]` in, `[B, T, N, H]` out."""
    return _forward(q_BTNH, k_BTNH, v_BTNH)[0]


def _backward(residuals, dy_BTNH):
    q_BNTH, k_BNSH, v_BNSH, p_BNTS, y_BNTH = residuals
    H = q_BNTH.shape[-1]
    dy_BNTH = _heads_first(dy_BTNH)
    dv_BNSH = jnp.einsum("bnts,bnth->bnsh", p_BNTS, dy_BNTH)
    dp_BNTS = jnp.einsum("bnth,bnsh->bnts", dy_BNTH, v_BNSH).astype(jnp.float32)
    d_BNT1 = (dy_BNTH.astype(jnp.float32) * y_BNTH.astype(jnp.float32)).sum(-1, keepdims=True)
    ds_BNTS = (p_BNTS.astype(jnp.float32) * (dp_BNTS - d_BNT1)).astype(q_BNTH.dtype)
    dq_BNTH = jnp.einsum("bnts,bnsh->bnth", ds_BNTS, k_BNSH) * jnp.asarray(1 / math.sqrt(H), q_BNTH.dtype)
    dk_BNSH = jnp.einsum("bnts,bnth->bnsh", ds_BNTS, q_BNTH)
    return _heads_first(dq_BNTH), _heads_first(dk_BNSH), _heads_first(dv_BNSH)


causal_attention.defvjp(_forward, _backward)
