"""The hand-written backward pass of causal attention against automatic differentiation of the reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse.attention import causal_attention


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
