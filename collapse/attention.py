"""Causal self-attention: training and scoring (`self_attention`), and decoding from a KV cache
(`cached_attention`).

Training attention has two implementations, chosen per platform at trace time (`attention_impl`):
- CPU: `causal_attention`, with the backward pass written out. Differentiating softmax attention
  automatically gives XLA a backward whose row sum of dP * P is fused into the batched matmul that makes dP,
  and XLA's CPU backend runs that fusion slowly (results/benchmark.md has the figures). The backward here is
  FlashAttention's: with D = rowsum(dY * Y), the score gradient is dS = P * (dP - D), an element-wise
  product, and the row sum is over head width H instead of key positions S. It keeps the whole probability
  matrix `[B, A, T, S]` for the backward pass, which is cheap at CPU sizes but not at GPU ones.
- GPU / TPU: `jax.nn.dot_product_attention`, with cuDNN's fused (flash) kernel where it applies (16-bit
  inputs, head width a multiple of 8 up to 128), which never materialises that matrix; XLA's otherwise.
Both compute the same function (tests/test_attention.py checks values and gradients on the CPU).

Shape suffixes (the package's legend: collapse/__init__.py): B batch, T query positions, S key positions
(S = T in training), A attention heads, H head width, X = B * A (the KV cache's single batch axis).
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

Impl = Literal["manual", "cudnn", "xla"]

CUDNN_DTYPES = ("float16", "bfloat16")
CUDNN_MAX_HEAD_WIDTH = 128  # cuDNN's flash kernel: head width a multiple of 8, at most 128 before Hopper


def _heads_first(a_BTAH: jax.Array) -> jax.Array:
    return a_BTAH.transpose(0, 2, 1, 3)


def _forward(q_BTAH, k_BTAH, v_BTAH):
    T, H = q_BTAH.shape[1], q_BTAH.shape[3]
    q_BATH = _heads_first(q_BTAH * jnp.asarray(1 / math.sqrt(H), q_BTAH.dtype))
    k_BASH, v_BASH = _heads_first(k_BTAH), _heads_first(v_BTAH)
    scores_BATS = jnp.einsum("bath,bash->bats", q_BATH, k_BASH).astype(jnp.float32)
    causal_TS = jnp.tril(jnp.ones((T, T), bool))
    p_BATS = jax.nn.softmax(jnp.where(causal_TS, scores_BATS, -jnp.inf), axis=-1).astype(v_BASH.dtype)
    y_BATH = jnp.einsum("bats,bash->bath", p_BATS, v_BASH)
    return _heads_first(y_BATH), (q_BATH, k_BASH, v_BASH, p_BATS, y_BATH)


@jax.custom_vjp
def causal_attention(q_BTAH: jax.Array, k_BTAH: jax.Array, v_BTAH: jax.Array) -> jax.Array:
    """softmax(q kᵀ / sqrt(H) + causal mask) v per head: `[B, T, A, H]` in, `[B, T, A, H]` out; the backward
    pass written out (the CPU path)."""
    return _forward(q_BTAH, k_BTAH, v_BTAH)[0]


def _backward(residuals, dy_BTAH):
    q_BATH, k_BASH, v_BASH, p_BATS, y_BATH = residuals
    H = q_BATH.shape[-1]
    dy_BATH = _heads_first(dy_BTAH)
    dv_BASH = jnp.einsum("bats,bath->bash", p_BATS, dy_BATH)
    dp_BATS = jnp.einsum("bath,bash->bats", dy_BATH, v_BASH).astype(jnp.float32)
    d_BAT1 = (dy_BATH.astype(jnp.float32) * y_BATH.astype(jnp.float32)).sum(-1, keepdims=True)
    ds_BATS = (p_BATS.astype(jnp.float32) * (dp_BATS - d_BAT1)).astype(q_BATH.dtype)
    dq_BATH = jnp.einsum("bats,bash->bath", ds_BATS, k_BASH) * jnp.asarray(1 / math.sqrt(H), q_BATH.dtype)
    dk_BASH = jnp.einsum("bats,bath->bash", ds_BATS, q_BATH)
    return _heads_first(dq_BATH), _heads_first(dk_BASH), _heads_first(dv_BASH)


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


def library_attention(q_BTAH: jax.Array, k_BTAH: jax.Array, v_BTAH: jax.Array, impl: Impl = "xla") -> jax.Array:
    """`causal_attention` by `jax.nn.dot_product_attention` ("xla" or "cudnn"). A cuDNN kernel refused
    while tracing (no cuDNN, an older GPU) falls back to XLA's."""
    if impl == "cudnn":
        try:
            return jax.nn.dot_product_attention(q_BTAH, k_BTAH, v_BTAH, is_causal=True, implementation="cudnn")
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    return jax.nn.dot_product_attention(q_BTAH, k_BTAH, v_BTAH, is_causal=True, implementation="xla")


def self_attention(q_BTAH: jax.Array, k_BTAH: jax.Array, v_BTAH: jax.Array, impl: Impl | None = None
                   ) -> jax.Array:
    """Causal attention of T positions over themselves `[B, T, A, H]`, by `impl` (default: `attention_impl`
    of the default backend, decided at trace time)."""
    impl = impl or attention_impl(jax.default_backend(), q_BTAH.dtype, q_BTAH.shape[-1])
    if impl == "manual":
        return causal_attention(q_BTAH, k_BTAH, v_BTAH)
    return library_attention(q_BTAH, k_BTAH, v_BTAH, impl)


# --------------------------------------------------------------------------------------- decoding

# The KV cache is `[X = B * A, S, H]` per layer: the layout both attention matmuls read with a single batch
# axis and no transpose (XLA's CPU backend copies a `[B, S, A, H]` cache whole at every step, and runs
# matmuls with several batch axes, as under the replicate vmap, several times slower).
KV = tuple[jax.Array, jax.Array]  # (k_XSH, v_XSH) of one layer


def to_cache_layout(a_BTAH: jax.Array) -> jax.Array:
    """`[B, T, A, H]` -> `[B * A, T, H]`."""
    B, T, A, H = a_BTAH.shape
    return a_BTAH.transpose(0, 2, 1, 3).reshape(B * A, T, H)


def update_cache(kv: KV, k_BTAH: jax.Array, v_BTAH: jax.Array, pos: jax.Array | int) -> KV:
    """The cache with the keys and values of positions pos..pos+T-1 written in (in the cache's dtype)."""
    k_XSH, v_XSH = kv
    k_XSH = jax.lax.dynamic_update_slice(k_XSH, to_cache_layout(k_BTAH).astype(k_XSH.dtype), (0, pos, 0))
    v_XSH = jax.lax.dynamic_update_slice(v_XSH, to_cache_layout(v_BTAH).astype(v_XSH.dtype), (0, pos, 0))
    return k_XSH, v_XSH


def cached_attention(q_BTAH: jax.Array, k_XSH: jax.Array, v_XSH: jax.Array, pos: jax.Array | int) -> jax.Array:
    """Attention of the queries at positions pos..pos+T-1 `[B, T, A, H]` over the cached keys and values
    `[B * A, S, H]` at positions up to their own (the cache must already hold positions ..pos+T-1; later
    entries are masked, whatever they hold)."""
    B, T, A, H = q_BTAH.shape
    q_XTH = to_cache_layout(q_BTAH)
    S = k_XSH.shape[1]
    mask_TS = jnp.arange(S)[None, :] <= pos + jnp.arange(T)[:, None]
    scores_XTS = jnp.einsum("xth,xsh->xts", q_XTH, k_XSH) / jnp.sqrt(H).astype(q_XTH.dtype)
    scores_XTS = jnp.where(mask_TS, scores_XTS.astype(jnp.float32), -jnp.inf)
    probs_XTS = jax.nn.softmax(scores_XTS, axis=-1).astype(v_XSH.dtype)
    return jnp.einsum("xts,xsh->xth", probs_XTS, v_XSH).reshape(B, A, T, H).transpose(0, 2, 1, 3)
