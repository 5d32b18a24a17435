import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse import sample as sampler
from collapse.config import SampleConfig
from collapse.families.transformer import TransformerFamily
from collapse.model import Transformer
from tests.helpers import TINY_MODEL

V = 13
Z = 4.5  # per-category two-sided z bound: false alarm ~7e-6 each, < 1e-4 over all categories of a test


@pytest.fixture(scope="module")
def family():
    return TransformerFamily(TINY_MODEL, V)


@pytest.fixture(scope="module")
def params(family):
    return family.init(jax.random.split(jax.random.key(0), 1))


@pytest.fixture(scope="module")
def forward(family, params):
    """Jitted full forward pass of replicate 0 (no cache), the reference the sampler must agree with."""
    one = jax.tree.map(lambda p: p[0], params)
    return jax.jit(lambda tokens: nnx.merge(family.graphdef, one)(tokens))


def greedy_reference(forward, prefix_BP, n_new):
    """Greedy continuation by full forward passes over a fixed-length buffer (causal: the tail is ignored)."""
    B, P = prefix_BP.shape
    seq = np.concatenate([prefix_BP, np.zeros((B, n_new), np.int32)], axis=1)
    for t in range(P, P + n_new):
        seq[:, t] = np.argmax(np.asarray(forward(jnp.asarray(seq[:, :-1])))[:, t - 1], axis=-1)
    return seq[:, P:]


def test_temperature_zero_is_greedy(family, params, forward):
    out = family.sample(params, np.zeros((1, 8, 0), np.int32), jax.random.split(jax.random.key(1), 1),
                        SampleConfig(temperature=0.0), n_new=10)[0]
    np.testing.assert_array_equal(out, greedy_reference(forward, np.full((8, 1), family.bos, np.int32), 10))


def test_continuation_conditions_on_the_prompt(family, params, forward):
    prompts = np.asarray(jax.random.randint(jax.random.key(2), (1, 8, 6), 0, V), np.int32)
    out = family.sample(params, prompts, jax.random.split(jax.random.key(1), 1),
                        SampleConfig(temperature=0.0), n_new=4)[0]
    prefix = np.concatenate([np.full((8, 1), family.bos, np.int32), prompts[0]], axis=1)
    np.testing.assert_array_equal(out, greedy_reference(forward, prefix, 4))


@pytest.mark.parametrize("top_k,top_p", [(3, 1.0), (0, 0.6), (4, 0.5)])
def test_every_token_is_inside_the_filter(family, params, forward, top_k, top_p):
    out = family.sample(params, np.zeros((1, 64, 0), np.int32), jax.random.split(jax.random.key(3), 1),
                        SampleConfig(top_k=top_k, top_p=top_p, temperature=1.5), n_new=12)[0]
    seq = np.concatenate([np.full((64, 1), family.bos), out], axis=1)
    logits = np.asarray(forward(jnp.asarray(seq[:, :-1]))) / 1.5
    order = np.argsort(-logits, axis=-1)
    rank = np.argsort(order, axis=-1)
    token_rank = np.take_along_axis(rank, out[..., None], axis=-1)[..., 0]
    if top_k:
        assert token_rank.max() < top_k
    # nucleus: the probability mass (after top-k renormalisation) ranked before the token is < top_p
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p_sorted = np.take_along_axis(p, order, axis=-1)
    if top_k:
        p_sorted[..., top_k:] = 0
    p_sorted /= p_sorted.sum(-1, keepdims=True)
    mass_before = np.cumsum(p_sorted, -1) - p_sorted
    assert (np.take_along_axis(mass_before, token_rank[..., None], -1) < top_p).all()


def expected_dist(logits, temperature, top_k, top_p):
    p = np.exp((logits - logits.max()) / temperature)
    order = np.argsort(-p)
    keep = np.ones_like(p, bool)
    if top_k:
        keep[order[top_k:]] = False
    q = np.where(keep, p, 0) / np.where(keep, p, 0).sum()
    before = np.cumsum(q[order]) - q[order]
    keep[order[before >= top_p]] = False
    q = np.where(keep, p, 0)
    return q / q.sum()


@pytest.mark.parametrize("temperature,top_k,top_p,candidates", [
    (1.0, 0, 1.0, 8), (0.7, 0, 1.0, 8), (1.0, 3, 1.0, 8), (1.0, 0, 0.8, 8), (1.3, 5, 0.9, 8),
    (1.0, 3, 1.0, 4), (1.0, 0, 0.8, 5),  # the prefilter is exact when top-k / the nucleus fit inside it
])
def test_choose_draws_the_filtered_distribution(temperature, top_k, top_p, candidates):
    logits = jnp.asarray([2.0, 1.5, 1.0, 0.4, 0.0, -0.5, -1.0, -3.0])
    n = 200_000
    draws = sampler.choose(jnp.broadcast_to(logits, (n, 8)), jax.random.key(4), temperature, top_k, top_p,
                           candidates)
    freq = np.bincount(np.asarray(draws), minlength=8) / n
    q = expected_dist(np.asarray(logits, np.float64), temperature, top_k, top_p)
    assert (freq[q == 0] == 0).all()
    se = np.sqrt(q * (1 - q) / n)
    assert (np.abs(freq - q) <= Z * se + 1e-12).all(), (freq, q)


def test_sampling_settings_do_not_recompile(family, params):
    keys = jax.random.split(jax.random.key(7), 1)
    prompts = np.zeros((1, 8, 0), np.int32)
    family.sample(params, prompts, keys, SampleConfig(), n_new=5)
    size = sampler.generate._cache_size()
    for cfg in (SampleConfig(temperature=0.3), SampleConfig(top_k=4), SampleConfig(top_p=0.7),
                SampleConfig(temperature=0.0, top_k=2, top_p=0.9)):
        family.sample(params, prompts, keys, cfg, n_new=5)
    assert sampler.generate._cache_size() == size


def test_same_key_same_samples_and_replicates_independent(family):
    params = family.init(jax.random.split(jax.random.key(0), 2))
    keys = jax.random.split(jax.random.key(8), 2)
    prompts = np.zeros((2, 16, 0), np.int32)
    a = family.sample(params, prompts, keys, SampleConfig(), n_new=8)
    b = family.sample(params, prompts, keys, SampleConfig(), n_new=8)
    np.testing.assert_array_equal(a, b)
    single = family.sample(jax.tree.map(lambda p: p[1:], params), prompts[1:], keys[1:], SampleConfig(), n_new=8)
    np.testing.assert_array_equal(a[1:], single)


def test_beam_of_one_is_greedy(family, params, forward):
    prompts = np.zeros((1, 8, 0), np.int32)
    greedy = family.sample(params, prompts, jax.random.split(jax.random.key(0), 1), SampleConfig(temperature=0.0),
                           n_new=6)
    bos = np.full((1, 8, 1), family.bos, np.int32)
    one = np.asarray(sampler.beam_search(family.graphdef, family.layout, params, jnp.asarray(bos), 6, 1))
    np.testing.assert_array_equal(one, greedy)
    five = family.sample(params, prompts, None, SampleConfig(beam_size=5), n_new=6)  # keys unused: deterministic
    assert five.shape == greedy.shape


def test_exhaustive_beam_finds_the_most_likely_sequence():
    """With K = V^(n-1) no continuation is ever pruned: beam search is exact MAP decoding."""
    V, n = 3, 3
    fam = TransformerFamily(TINY_MODEL, V)
    params = fam.init(jax.random.split(jax.random.key(5), 1))
    one = jax.tree.map(lambda p: p[0], params)
    model = nnx.merge(fam.graphdef, one)
    prompt = np.array([[V, 2, 0], [V, 1, 1]], np.int32)  # BOS + 2 prompt tokens
    out = np.asarray(sampler.beam_search(fam.graphdef, fam.layout, params, jnp.asarray(prompt[None]), n, V ** (n - 1)))[0]
    grid = np.stack(np.meshgrid(*[np.arange(V)] * n, indexing="ij"), -1).reshape(-1, n)  # all V^n continuations
    for b in range(2):
        seqs = np.concatenate([np.repeat(prompt[b:b + 1], len(grid), 0), grid], axis=1)
        logp = jax.nn.log_softmax(model(jnp.asarray(seqs[:, :-1])))
        score = np.take_along_axis(np.asarray(logp[:, 2:]), seqs[:, 3:, None], -1)[..., 0].sum(-1)
        np.testing.assert_array_equal(out[b], grid[np.argmax(score)])
