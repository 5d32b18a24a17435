"""Causal self-attention: training and scoring (`self_attention`), and decoding from a KV cache
(`cached_attention`).

Training attention has two implementations, chosen per platform at trace time (`attention_impl`):
- CPU: `causal_attention`, with the backward pass written out. Differentiating softmax attention
  automatically gives XLA a backward whose row sum of dP * P is fused into the batched matmul that makes dP,
  and XLA's CPU backend runs that fusion slowly (results/benchmark.md has the figures). The backward here is
  FlashAttention's: with D = rowsum(dY * Y), the score gradient is dS = P * (dP - D), an element-wise
  product, and the row sum is over head width H instead of key positions S. It keeps the whole probability
  matrix `[B, N, T, S]` for the backward pass, which is cheap at CPU sizes but not at GPU ones.
- GPU / TPU: `jax.nn.dot_product_attention`, with cuDNN's fused (flash) kernel where it applies (16-bit
  inputs, head width a multiple of 8 up to 128), which never materialises that matrix; XLA's otherwise.
Both compute the same function (tests/test_attention.py checks values and gradients on the CPU).

Shape suffixes: B batch, T query positions, S key positions (S = T in training), N heads, H head width,
X = B * N (the KV cache's single batch axis).
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

Impl = Literal["manual", "cudnn", "xla"]

CUDNN_DTYPES = ("float16", "bfloat16")
CUDNN_MAX_HEAD_WIDTH = 128  # cuDNN's flash kernel: head width a multiple of 8, at most 128 before Hopper


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
    """softmax(q kᵀ / sqrt(H) + causal mask) v per head: `[B, T, N, H]` in, `[B, T, N, H]` out; the backward
    pass written out (the CPU path)."""
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


def attention_impl(platform: str, dtype, head_width: int) -> Impl:
    """Which implementation trains attention on `platform` ("cpu", "gpu"/"cuda"/"rocm", "tpu"):
    "manual" (`causal_attention`) on the CPU, where its backward is the faster one; "cudnn" on a GPU for
    16-bit inputs and head widths cuDNN's flash kernel takes; else "xla" (`jax.nn.dot_product_attention`'s
    XLA implementation)."""
    if platform == "cpu":
        return "manual"
    fits_cudnn = (jnp.dtype(dtype).name in CUDNN_DTYPES and head_width % 8 == 0
                  and head_width <= CUDNN_MAX_HEAD_WIDTH)
    if platform in ("gpu", "cuda") and fits_cudnn:
        return "cudnn"
    return "xla"


def library_attention(q_BTNH: jax.Array, k_BTNH: jax.Array, v_BTNH: jax.Array, impl: Impl = "xla") -> jax.Array:
    """`causal_attention` by `jax.nn.dot_product_attention` ("xla" or "cudnn"). A cuDNN kernel refused
    while tracing (no cuDNN, an older GPU) falls back to XLA's."""
    if impl == "cudnn":
        try:
            return jax.nn.dot_product_attention(q_BTNH, k_BTNH, v_BTNH, is_causal=True, implementation="cudnn")
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    return jax.nn.dot_product_attention(q_BTNH, k_BTNH, v_BTNH, is_causal=True, implementation="xla")


def self_attention(q_BTNH: jax.Array, k_BTNH: jax.Array, v_BTNH: jax.Array, impl: Impl | None = None
                   ) -> jax.Array:
    """Causal attention of T positions over themselves `[B, T, N, H]`, by `impl` (default: `attention_impl`
    of the default backend, decided at trace time)."""
    impl = impl or attention_impl(jax.default_backend(), q_BTNH.dtype, q_BTNH.shape[-1])
    if impl == "manual":
        return causal_attention(q_BTNH, k_BTNH, v_BTNH)
    return library_attention(q_BTNH, k_BTNH, v_BTNH, impl)


# --------------------------------------------------------------------------------------- decoding

# The KV cache is `[X = B * N, S, H]` per layer: the layout both attention matmuls read with a single batch
# axis and no transpose (XLA's CPU backend copies a `[B, S, N, H]` cache whole at every step, and runs
# matmuls with several batch axes, as under the replicate vmap, several times slower).
KV = tuple[jax.Array, jax.Array]  # (k_XSH, v_XSH) of one layer


def to_cache_layout(a_BTNH: jax.Array) -> jax.Array:
    """`[B, T, N, H]` -> `[B * N, T, H]`."""
    B, T, N, H = a_BTNH.shape
    return a_BTNH.transpose(0, 2, 1, 3).reshape(B * N, T, H)


def update_cache(kv: KV, k_BTNH: jax.Array, v_BTNH: jax.Array, pos: jax.Array | int) -> KV:
    """The cache with the keys and values of positions pos..pos+T-1 written in (in the cache's dtype)."""
    k_XSH, v_XSH = kv
    k_XSH = jax.lax.dynamic_update_slice(k_XSH, to_cache_layout(k_BTNH).astype(k_XSH.dtype), (0, pos, 0))
    v_XSH = jax.lax.dynamic_update_slice(v_XSH, to_cache_layout(v_BTNH).astype(v_XSH.dtype), (0, pos, 0))
    return k_XSH, v_XSH


def cached_attention(q_BTNH: jax.Array, k_XSH: jax.Array, v_XSH: jax.Array, pos: jax.Array | int) -> jax.Array:
    """Attention of the queries at positions pos..pos+T-1 `[B, T, N, H]` over the cached keys and values
    `[B * N, S, H]` at positions up to their own (the cache must already hold positions ..pos+T-1; later
    entries are masked, whatever they hold)."""
    B, T, N, H = q_BTNH.shape
    q_XTH = to_cache_layout(q_BTNH)
    S = k_XSH.shape[1]
    mask_TS = jnp.arange(S)[None, :] <= pos + jnp.arange(T)[:, None]
    scores_XTS = jnp.einsum("xth,xsh->xts", q_XTH, k_XSH) / jnp.sqrt(H).astype(q_XTH.dtype)
    scores_XTS = jnp.where(mask_TS, scores_XTS.astype(jnp.float32), -jnp.inf)
    probs_XTS = jax.nn.softmax(scores_XTS, axis=-1).astype(v_XSH.dtype)
    return jnp.einsum("xts,xsh->xth", probs_XTS, v_XSH).reshape(B, N, T, H).transpose(0, 2, 1, 3)
