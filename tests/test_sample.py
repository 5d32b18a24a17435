import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse import sample as sampler
from collapse.config import SampleConfig
from collapse.families.transformer import TransformerFamily
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


def test_greedy_decoding_in_growing_cache_windows_matches_full_forward_passes(family, params, forward):
    """30 new tokens after BOS + 1 prompt token: decoded in 3 windows (caches of 12, 22, 31 positions)."""
    assert sampler.cache_lengths(2, 30) == [12, 22, 31]
    prefix = np.stack([np.full(8, family.bos), np.arange(8) % V], axis=1).astype(np.int32)
    out = family.sample(params, prefix[None, :, 1:], jax.random.split(jax.random.key(3), 1),
                        SampleConfig(temperature=0.0), n_new=30)[0]
    np.testing.assert_array_equal(out, greedy_reference(forward, prefix, 30))


@pytest.mark.parametrize("prompt_len,n_new", [(1, 1), (1, 8), (1, 9), (65, 64), (2, 127), (1, 1000)])
def test_cache_lengths_grow_to_hold_every_position(prompt_len, n_new):
    lengths = sampler.cache_lengths(prompt_len, n_new)
    assert lengths[-1] == prompt_len + n_new - 1  # the last token decoded sits at position P + n - 2
    assert lengths[0] >= prompt_len and all(a < b for a, b in zip(lengths, lengths[1:])) and len(lengths) <= 4
    assert all(b - a >= 8 for a, b in zip([prompt_len, *lengths], lengths)) or len(lengths) == 1


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


def test_top_k_of_the_whole_vocabulary_and_top_p_one_cut_nothing():
    # Zipf(1.1) logits at τ = 0.3: the float32 mass ranked before a token rounds to 1 long before rank V,
    # yet top_p = 1 is no nucleus, so top_k = V must give plain softmax sampling.
    n, V = 64, 1000
    scaled_1V = jnp.asarray(-1.1 * np.log(np.arange(1, V + 1)) / 0.3, jnp.float32)[None]
    vals_1K, idx_1K = sampler.filter_logits(scaled_1V, V, 1.0, V)
    assert bool(jnp.isfinite(vals_1K).all())
    kept_V = jnp.zeros(V).at[idx_1K[0]].set(jax.nn.softmax(vals_1K[0]))
    np.testing.assert_allclose(kept_V, jax.nn.softmax(scaled_1V[0]), rtol=1e-5)
    logits_BV = jnp.broadcast_to(scaled_1V * 0.3, (n, V))
    whole = sampler.choose(logits_BV, jax.random.key(5), 0.3, V, 1.0, V)
    off = sampler.choose(logits_BV, jax.random.key(5), 0.3, 0, 1.0, V)
    np.testing.assert_array_equal(whole, off)


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
    """20 new tokens: decoded in two cache windows (11 and 20 positions)."""
    assert sampler.cache_lengths(1, 20) == [11, 20]
    bos = np.full((1, 8, 1), family.bos, np.int32)
    one = np.asarray(sampler.beam_search(family.graphdef, family.layout, params, jnp.asarray(bos), 20, 1))
    np.testing.assert_array_equal(one[0], greedy_reference(forward, bos[0], 20))
    prompts = np.zeros((1, 8, 0), np.int32)
    five = family.sample(params, prompts, None, SampleConfig(beam_size=5), n_new=20)  # keys unused: deterministic
    assert five.shape == one.shape


def test_exhaustive_beam_finds_the_most_likely_sequence():
    """With K = V^(n-1) no continuation is ever pruned: beam search is exact MAP decoding."""
    V, n = 3, 3
    fam = TransformerFamily(TINY_MODEL, V)
    params = fam.init(jax.random.split(jax.random.key(5), 1))
    one = jax.tree.map(lambda p: p[0], params)
    model = nnx.merge(fam.graphdef, one)
    prompt = np.array([[V, 2, 0], [V, 1, 1]], np.int32)  # BOS + 2 prompt tokens
    out = sampler.beam_search(fam.graphdef, fam.layout, params, jnp.asarray(prompt[None]), n, V ** (n - 1))
    out = np.asarray(out)[0]
    grid = np.stack(np.meshgrid(*[np.arange(V)] * n, indexing="ij"), -1).reshape(-1, n)  # all V^n continuations
    for b in range(2):
        seqs = np.concatenate([np.repeat(prompt[b:b + 1], len(grid), 0), grid], axis=1)
        logp = jax.nn.log_softmax(model(jnp.asarray(seqs[:, :-1])))
        score = np.take_along_axis(np.asarray(logp[:, 2:]), seqs[:, 3:, None], -1)[..., 0].sum(-1)
        np.testing.assert_array_equal(out[b], grid[np.argmax(score)])


@pytest.mark.parametrize("V", [300, 256])  # padded to 18 x 17 groups; 16 x 16 exactly
def test_categorical_draws_softmax_exactly_tails_included(V):
    """Two-level draws against softmax on a Zipf-like distribution whose rarest tokens have p ~ 1e-6:
    -inf tokens never drawn; Pearson's chi-square (tokens expected fewer than 5 times pooled into one bin)
    below its 1e-4 upper quantile, and each token within a Bonferroni bound (1e-4 overall)."""
    from scipy.stats import chi2, norm

    rng = np.random.default_rng(0)
    logits = -1.5 * np.log(np.arange(1, V + 1)) + rng.normal(0, 0.3, V)
    tail, never = np.split(rng.choice(V, 30, replace=False), [20])
    logits[tail] -= 8.0  # p ~ 1e-8 .. 1e-5
    logits[never] = -np.inf
    n = 400_000
    logits_BV = jnp.broadcast_to(jnp.asarray(logits, jnp.float32), (n, V))
    counts = np.bincount(np.asarray(sampler.categorical(jax.random.key(5), logits_BV)), minlength=V)
    q = np.exp(logits - logits[np.isfinite(logits)].max())
    q /= q.sum()
    assert (counts[q == 0] == 0).all()
    big = q * n >= 5
    assert (~big & (q > 0)).sum() > 0 and q[q > 0].min() < 1e-5  # the test does reach into the tail
    observed = np.append(counts[big], counts[~big].sum())
    expected = np.append(q[big], q[~big].sum()) * n
    assert ((observed - expected) ** 2 / expected).sum() < chi2.isf(1e-4, len(observed) - 1)
    z = norm.isf(1e-4 / (2 * big.sum()))
    assert (np.abs(counts[big] - expected[:-1]) <= z * np.sqrt(expected[:-1] * (1 - q[big]))).all()


def numpy_penalty(logits, seen, penalty):
    """Hugging Face's RepetitionPenaltyLogitsProcessor on one row: score < 0 → score * p, else score / p."""
    out = np.array(logits, np.float64)
    for t in np.flatnonzero(seen):
        out[t] = out[t] * penalty if out[t] < 0 else out[t] / penalty
    return out


def test_repetition_penalty_equals_hugging_faces_rule():
    logits = np.array([[2.0, -1.0, 0.0, 3.0, -4.0]], np.float32)
    seen = sampler.seen_tokens(jnp.asarray([[0, 1, 2, 5, 1]]), 5)  # id 5 = the extra BOS: ignored
    np.testing.assert_array_equal(seen, [[True, True, True, False, False]])
    np.testing.assert_allclose(sampler.penalize(jnp.asarray(logits), seen, 3.0)[0],
                               numpy_penalty(logits[0], np.asarray(seen[0]), 3.0), rtol=1e-7)


def penalised_greedy_reference(forward, prefix_BP, n_new, penalty):
    """Greedy decoding with the penalty over each row's tokens so far (prompt included, BOS not a token)."""
    B, P = prefix_BP.shape
    seq = np.concatenate([prefix_BP, np.zeros((B, n_new), np.int32)], axis=1)
    for t in range(P, P + n_new):
        logits = np.asarray(forward(jnp.asarray(seq[:, :-1])))[:, t - 1]
        for b in range(B):
            seen = np.isin(np.arange(V), seq[b, :t])
            seq[b, t] = np.argmax(numpy_penalty(logits[b], seen, penalty))
    return seq[:, P:]


def numpy_beam(forward, prompt_P, n_new, K, penalty):
    """Beam search by full forward passes, each beam's log-probabilities then the penalty over its own tokens, not
    renormalised (Hugging Face's beam search applies its logits processors to log_softmax; no length penalty)."""
    beams = [(0.0, [])]
    for _ in range(n_new):
        pool = []
        for score, seq in beams:
            full = np.r_[prompt_P, seq].astype(np.int32)
            logits = np.asarray(forward(jnp.asarray(full[None])))[0, -1]
            logp = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
            logp = numpy_penalty(logp, np.isin(np.arange(V), full), penalty)
            pool += [(score + logp[t], seq + [t]) for t in range(V)]
        beams = sorted(pool, key=lambda x: -x[0])[:K]
    return beams[0][1]


def test_repetition_penalty_in_greedy_and_beam_decoding_equals_a_reference(family, params, forward):
    """Sampling (temperature 0) and beam search (K = 3) with repetition_penalty 3 (Shumailov et al.'s) equal a
    step-by-step NumPy decoding on full forward passes; with the penalty the output repeats less."""
    prefix = np.stack([np.full(4, family.bos), np.arange(4) % V, (np.arange(4) + 5) % V], axis=1).astype(np.int32)
    cfg = SampleConfig(temperature=0.0, repetition_penalty=3.0)
    out = family.sample(params, prefix[None, :, 1:], jax.random.split(jax.random.key(3), 1), cfg, n_new=12)[0]
    np.testing.assert_array_equal(out, penalised_greedy_reference(forward, prefix, 12, 3.0))
    plain = greedy_reference(forward, prefix, 12)
    assert np.mean([len(set(r)) for r in out]) > np.mean([len(set(r)) for r in plain])
    beams = np.asarray(sampler.beam_search(family.graphdef, family.layout, params, jnp.asarray(prefix[None]), 6, 3,
                                           3.0))[0]
    for b in range(len(prefix)):
        np.testing.assert_array_equal(beams[b], numpy_beam(forward, prefix[b], 6, 3, 3.0))
