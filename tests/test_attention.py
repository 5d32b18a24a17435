"""The hand-written backward pass of causal attention against automatic differentiation of the reference;
the per-platform choice of implementation; decoding attention from a KV cache against training attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse.attention import (attention_impl, cached_attention, causal_attention, library_attention,
                                self_attention, to_cache_layout, update_cache)


@pytest.mark.parametrize("B,T,N,H", [(2, 16, 4, 8), (3, 7, 1, 5)])
def test_values_and_gradients_match_jax_dot_product_attention(B, T, N, H):
    q, k, v, g = (jax.random.normal(key, (B, T, N, H)) for key in jax.random.split(jax.random.key(0), 4))
    ref = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    np.testing.assert_allclose(causal_attention(q, k, v), ref(q, k, v), rtol=1e-5, atol=1e-6)
    grads = [jax.grad(lambda *a: (f(*a) * g).sum(), argnums=(0, 1, 2))(q, k, v) for f in (causal_attention, ref)]
    for ours, theirs in zip(*grads):  # float32 sums in another order: a few ulps of the largest entry
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * float(jnp.abs(theirs).max()))


def test_a_query_sees_only_earlier_positions():
    """Changing the keys / values after position t leaves outputs up to t unchanged, and gradients too."""
    q, k, v = (jax.random.normal(key, (1, 10, 2, 4)) for key in jax.random.split(jax.random.key(1), 3))
    k2, v2 = k.at[:, 6:].add(3.0), v.at[:, 6:].add(-2.0)
    np.testing.assert_array_equal(causal_attention(q, k, v)[:, :6], causal_attention(q, k2, v2)[:, :6])
    dk = jax.grad(lambda k: causal_attention(q, k, v)[:, :6].sum())(k)
    assert (dk[:, 6:] == 0).all()


def test_bfloat16_inputs_give_bfloat16_outputs_close_to_float32():
    q, k, v = (jax.random.normal(key, (2, 8, 2, 4)) for key in jax.random.split(jax.random.key(2), 3))
    half = causal_attention(*(a.astype(jnp.bfloat16) for a in (q, k, v)))
    assert half.dtype == jnp.bfloat16
    np.testing.assert_allclose(half.astype(jnp.float32), causal_attention(q, k, v), atol=3e-2)  # bf16: 8 bits
    dq = jax.grad(lambda q: causal_attention(q, k.astype(jnp.bfloat16), v.astype(jnp.bfloat16)).astype(
        jnp.float32).sum())(q.astype(jnp.bfloat16))
    assert dq.dtype == jnp.bfloat16


@pytest.mark.parametrize("platform,dtype,H,expected", [
    ("cpu", jnp.float32, 64, "manual"), ("cpu", jnp.bfloat16, 64, "manual"),
    ("gpu", jnp.bfloat16, 64, "cudnn"), ("cuda", jnp.float16, 128, "cudnn"),
    ("gpu", jnp.float32, 64, "xla"),  # cuDNN's flash kernel takes 16-bit inputs only
    ("gpu", jnp.bfloat16, 12, "xla"), ("gpu", jnp.bfloat16, 256, "xla"),  # head width: multiple of 8, <= 128
    ("rocm", jnp.bfloat16, 64, "xla"), ("tpu", jnp.bfloat16, 64, "xla"), ("tpu", jnp.float32, 32, "xla")])
def test_attention_impl_by_platform_dtype_and_head_width(platform, dtype, H, expected):
    assert attention_impl(platform, dtype, H) == expected


def test_the_cpu_trains_with_the_hand_written_attention():
    """On this backend `self_attention` is `causal_attention`, bit for bit: the CPU's numbers are unchanged."""
    assert jax.default_backend() == "cpu"
    q, k, v = (jax.random.normal(key, (2, 9, 2, 8)) for key in jax.random.split(jax.random.key(3), 3))
    np.testing.assert_array_equal(jax.jit(self_attention)(q, k, v), jax.jit(causal_attention)(q, k, v))


@pytest.mark.parametrize("impl", ["xla", "cudnn"])  # cudnn: refused on the CPU while tracing, XLA's runs
def test_library_path_gives_the_values_and_gradients_of_the_hand_written_one(impl):
    q, k, v, g = (jax.random.normal(key, (2, 16, 4, 8)) for key in jax.random.split(jax.random.key(4), 4))
    ours = lambda q, k, v: self_attention(q, k, v, impl="manual")  # noqa: E731
    library = jax.jit(lambda q, k, v: self_attention(q, k, v, impl=impl))
    np.testing.assert_allclose(library(q, k, v), ours(q, k, v), rtol=1e-5, atol=1e-6)
    grads = [jax.grad(lambda *a: (f(*a) * g).sum(), argnums=(0, 1, 2))(q, k, v) for f in (ours, library)]
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * float(jnp.abs(a).max()))


def test_library_path_in_bfloat16():
    q, k, v = (jax.random.normal(key, (2, 8, 2, 8)) for key in jax.random.split(jax.random.key(5), 3))
    half = [a.astype(jnp.bfloat16) for a in (q, k, v)]
    y = library_attention(*half, impl="xla")
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(y.astype(jnp.float32), causal_attention(q, k, v), atol=3e-2)  # bf16: 8 bits
    dq = jax.grad(lambda q: library_attention(q, *half[1:]).astype(jnp.float32).sum())(half[0])
    assert dq.dtype == jnp.bfloat16 and bool(jnp.isfinite(dq.astype(jnp.float32)).all())


def test_cached_attention_of_a_full_cache_is_causal_attention():
    B, T, N, H, S = 2, 11, 3, 4, 16  # a cache longer than the sequence: entries past it are masked
    q, k, v = (jax.random.normal(key, (B, T, N, H)) for key in jax.random.split(jax.random.key(6), 3))
    empty = (jnp.zeros((B * N, S, H)), jnp.zeros((B * N, S, H)))
    kv = update_cache(empty, k, v, 0)
    np.testing.assert_array_equal(kv[0][:, :T], to_cache_layout(k))
    np.testing.assert_allclose(cached_attention(q, *kv, 0), causal_attention(q, k, v), rtol=1e-5, atol=1e-6)


def test_cached_attention_token_by_token_after_a_prefill_is_causal_attention():
    """Prefill P positions, then decode one position at a time: each step's output is that position's row of
    full causal attention, whatever the unwritten cache entries hold."""
    B, T, N, H, P = 2, 10, 2, 4, 4
    q, k, v = (jax.random.normal(key, (B, T, N, H)) for key in jax.random.split(jax.random.key(7), 3))
    noise = jax.random.normal(jax.random.key(8), (B * N, T, H))
    kv = update_cache((noise, -noise), k[:, :P], v[:, :P], 0)

    @jax.jit
    def step(kv, q, k, v, pos):
        kv = update_cache(kv, k, v, pos)
        return cached_attention(q, *kv, pos), kv

    rows = [cached_attention(q[:, :P], *kv, 0)]
    for t in range(P, T):
        y, kv = step(kv, q[:, t:t + 1], k[:, t:t + 1], v[:, t:t + 1], t)
        rows.append(y)
    np.testing.assert_allclose(jnp.concatenate(rows, axis=1), causal_attention(q, k, v), rtol=1e-5, atol=1e-6)
