import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from collapse.model import Transformer, sequence_logprob, with_bos
from tests.helpers import TINY_MODEL

V = 11


def make(seed=0):
    return Transformer(TINY_MODEL, V, rngs=nnx.Rngs(seed))


@nnx.jit
def forward(model, tokens):
    return model(tokens)


@nnx.jit
def decode(model, tokens, cache, pos):
    return model.decode(tokens, cache, pos)


def test_shapes_and_bos():
    model = make()
    tokens = jax.random.randint(jax.random.key(1), (3, 10), 0, V)
    assert forward(model, tokens).shape == (3, 10, V)  # BOS = V is an input only: the head has V outputs
    assert model.tok_embed.embedding[...].shape == (V + 1, TINY_MODEL.d_model)
    np.testing.assert_array_equal(with_bos(tokens, V)[:, 0], V)
    np.testing.assert_array_equal(with_bos(tokens, V)[:, 1:], tokens[:, :-1])


def test_kv_cache_decoding_matches_full_forward():
    model = make()
    tokens = jax.random.randint(jax.random.key(1), (3, 20), 0, V + 1)
    full = forward(model, tokens)
    cache = model.init_cache(3, 20)
    logits, cache = decode(model, tokens[:, :7], cache, 0)  # prefill
    steps = [logits]
    for t in range(7, 20):
        logits, cache = decode(model, tokens[:, t:t + 1], cache, t)
        steps.append(logits)
    np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-5, rtol=1e-5)


def test_causal():
    model = make()
    tokens = jax.random.randint(jax.random.key(1), (2, 12), 0, V)
    changed = tokens.at[:, 8:].set((tokens[:, 8:] + 1) % V)
    a, b = forward(model, tokens), forward(model, changed)
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not np.allclose(a[:, 8:], b[:, 8:])


def test_sequence_logprob_is_the_sum_of_next_token_logprobs():
    model = make()
    tokens = jax.random.randint(jax.random.key(2), (4, 9), 0, V)
    logp = np.asarray(jax.nn.log_softmax(forward(model, with_bos(tokens, V))))
    manual = np.take_along_axis(logp, np.asarray(tokens)[..., None], -1).sum(axis=(1, 2))
    np.testing.assert_allclose(nnx.jit(sequence_logprob)(model, tokens), manual, rtol=1e-5)


def test_same_key_same_parameters():
    a, b = nnx.state(make(3)), nnx.state(make(3))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_scanned_layers_compute_the_same_function():
    import dataclasses

    scanned = Transformer(dataclasses.replace(TINY_MODEL, scan_layers=True), V, rngs=nnx.Rngs(0))
    looped = make(0)
    # copy the looped model's parameters into the stacked layout
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[nnx.state(b) for b in looped.blocks])
    nnx.update(scanned.blocks, stacked)
    for name in ("tok_embed", "pos_embed", "ln_f", "head"):
        nnx.update(getattr(scanned, name), nnx.state(getattr(looped, name)))
    tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, V + 1)
    np.testing.assert_allclose(forward(scanned, tokens), forward(looped, tokens), atol=1e-5, rtol=1e-5)
    cache = scanned.init_cache(3, 12)
    assert cache[0].shape == (TINY_MODEL.n_layers, 3 * TINY_MODEL.n_heads, 12, TINY_MODEL.d_model // TINY_MODEL.n_heads)
    logits, cache = decode(scanned, tokens[:, :5], cache, 0)
    steps = [logits]
    for t in range(5, 12):
        logits, cache = decode(scanned, tokens[:, t:t + 1], cache, t)
        steps.append(logits)
    np.testing.assert_allclose(jnp.concatenate(steps, 1), forward(looped, tokens), atol=1e-5, rtol=1e-5)


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
    import dataclasses

    model = Transformer(dataclasses.replace(TINY_MODEL, dtype="bfloat16"), V, rngs=nnx.Rngs(0))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nnx.state(model)))
    tokens = jax.random.randint(jax.random.key(1), (2, 12), 0, V)
    low = forward(model, tokens)
    assert low.dtype == jnp.float32
    high = forward(make(0), tokens)
    # bf16 rounds to u = 2**-8 relative; ~10 rounded stages per layer, 2 layers: error well within 10 u
    assert float(jnp.linalg.norm(low - high) / jnp.linalg.norm(high)) < 10 * 2.0**-8


def test_beam_search_with_scanned_layers_matches_looped_layers():
    import dataclasses

    from collapse import sample as sampler
    from collapse.families.transformer import TransformerFamily

    looped = TransformerFamily(TINY_MODEL, V)
    scanned = TransformerFamily(dataclasses.replace(TINY_MODEL, scan_layers=True), V)
    params = looped.init(jax.random.split(jax.random.key(4), 1))
    blocks = [params["blocks"][i] for i in range(TINY_MODEL.n_layers)]
    stacked = {**{k: v for k, v in params.items() if k != "blocks"},
               "blocks": jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *blocks)}
    stacked = nnx.State(stacked) if not isinstance(params, dict) else stacked
    prompt = jnp.asarray(np.array([[[V, 1, 2], [V, 3, 0]]], np.int32))
    a = sampler.beam_search(looped.graphdef, looped.layout, params, prompt, 5, 3)
    b = sampler.beam_search(scanned.graphdef, scanned.layout, stacked, prompt, 5, 3)
    np.testing.assert_array_equal(a, b)
