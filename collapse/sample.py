"""Batched autoregressive sampling with a KV cache: prefill once, then the whole decode loop in jitted
`lax.scan`s, one per window of growing cache length (`cache_lengths`), so early steps read a short cache.

Temperature, top-k and top-p are traced scalars, so changing them never recompiles. Top-k and top-p look
only at the `candidates` most likely tokens (one `lax.top_k` per step instead of a full-vocabulary sort);
top-k is applied first, then top-p on the renormalised top-k distribution (the order Hugging Face uses).
top_k = 0 or V and top_p = 1 are off: plain softmax sampling.
Temperature 0 is greedy decoding. `beam_search` keeps the `K` most likely continuations instead
(deterministic; Shumailov et al. 2024 generate with 5-way beam search), in the same jitted style.

Shape suffixes: the package's (collapse/__init__.py), and K beams, S cached positions, G and C the groups and
their candidates of the two-step categorical draw, X the decoding steps after the first.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from collapse import watermark
from collapse.devices import Layout, over_replicates
from collapse.model import select_rows
from collapse.watermark import Watermark


def categorical(key: jax.Array, logits_BV: jax.Array) -> jax.Array:
    """One draw per row from `softmax(logits_BV)`, exactly, with 2 sqrt(V) random numbers per row instead of V.

    The vocabulary is cut into G groups of C tokens: draw a group from the groups' total masses (their
    logsumexp), then a token within it; P(group) P(token | group) = P(token). Each draw is a Gumbel-max
    like `jax.random.categorical`, so the float32 behaviour (tails included) is that of one Gumbel-max; the
    saving is the random numbers, which cost more than the whole rest of a small model's decode step."""
    B, V = logits_BV.shape
    if V < 64:
        return jax.random.categorical(key, logits_BV)
    C = math.isqrt(V - 1) + 1  # ceil(sqrt(V))
    G = -(-V // C)
    logits_BGC = jnp.pad(logits_BV, ((0, 0), (0, G * C - V)), constant_values=-jnp.inf).reshape(B, G, C)
    group_key, token_key = jax.random.split(key)
    group_B = jax.random.categorical(group_key, jax.nn.logsumexp(logits_BGC, axis=-1))
    within_BC = jnp.take_along_axis(logits_BGC, group_B[:, None, None], axis=1)[:, 0]
    return group_B * C + jax.random.categorical(token_key, within_BC)


def filter_logits(scaled_BV: jax.Array, top_k, top_p, candidates: int) -> tuple[jax.Array, jax.Array]:
    """The `candidates` most likely tokens `idx_BK` and their logits `vals_BK`, -inf where top-k or top-p cuts
    them: top-k first, then top-p on the renormalised top-k distribution (kept while the mass before < top_p).
    top_p >= 1 cuts nothing: a float32 cumulative mass rounds to 1 before the last tokens."""
    vals_BK, idx_BK = jax.lax.top_k(scaled_BV, candidates)
    rank_K = jnp.arange(candidates)
    in_top_k_K = (top_k == 0) | (rank_K < top_k)
    vals_BK = jnp.where(in_top_k_K, vals_BK, -jnp.inf)
    # Normalise over the top-k set, or over the whole vocabulary when top-k is off.
    log_norm_B1 = jnp.where(top_k > 0, jax.nn.logsumexp(vals_BK, axis=-1, keepdims=True),
                            jax.nn.logsumexp(scaled_BV, axis=-1, keepdims=True))
    p_BK = jnp.exp(vals_BK - log_norm_B1)
    mass_before_BK = jnp.cumsum(p_BK, axis=-1) - p_BK  # keep a token if the nucleus is not yet full
    vals_BK = jnp.where((mass_before_BK < top_p) | (top_p >= 1), vals_BK, -jnp.inf)
    return vals_BK, idx_BK


def seen_tokens(tokens_BX: jax.Array, V: int) -> jax.Array:
    """`[B, V]` bool: whether each of the V tokens occurs in the row (ids >= V, our extra BOS, ignored)."""
    return jnp.zeros((tokens_BX.shape[0], V + 1), bool).at[jnp.arange(tokens_BX.shape[0])[:, None],
                                                           jnp.minimum(tokens_BX, V)].set(True)[:, :V]


def penalize(logits_BV: jax.Array, seen_BV: jax.Array | None, penalty: float) -> jax.Array:
    """Hugging Face's repetition penalty (Keskar et al. 2019): the logit of a token already in the row divided by
    `penalty` where positive, multiplied where negative (1: off)."""
    if seen_BV is None:
        return logits_BV
    return jnp.where(seen_BV, jnp.where(logits_BV < 0, logits_BV * penalty, logits_BV / penalty), logits_BV)


def _seen(seen_BV: jax.Array | None, token_B: jax.Array) -> jax.Array | None:
    return None if seen_BV is None else seen_BV.at[jnp.arange(len(token_B)), token_B].set(True)


def choose(logits_BV: jax.Array, key: jax.Array, temperature, top_k, top_p, candidates: int,
           mark: Watermark = Watermark(), window_BC: jax.Array | None = None) -> jax.Array:
    """Draw one token per row from `softmax(logits / temperature)` restricted by top-k and top-p; with a
    watermark, green tokens' logits raised first, or the Gumbel rule's draw from the restricted distribution
    (`collapse.watermark`, seeded by each row's context window `window_BC`). A repetition penalty is the
    caller's (`penalize`, before this)."""
    V = logits_BV.shape[-1]
    if mark.scheme == "green_list":
        logits_BV = logits_BV + mark.delta * watermark.green_mask(mark, window_BC, V)
    r_BV = watermark.uniforms(mark, window_BC, V) if mark.scheme == "gumbel" else None
    scaled_BV = logits_BV / jnp.maximum(temperature, 1e-6)

    def draw(vals_BK, r_BK):
        return categorical(key, vals_BK) if r_BK is None else watermark.gumbel_pick(jax.nn.log_softmax(vals_BK), r_BK)

    def filtered():
        vals_BK, idx_BK = filter_logits(scaled_BV, top_k, top_p, candidates)
        pick_B = draw(vals_BK, None if r_BV is None else jnp.take_along_axis(r_BV, idx_BK, axis=-1))
        return jnp.take_along_axis(idx_BK, pick_B[:, None], axis=-1)[:, 0]

    def plain():
        return draw(scaled_BV, r_BV)

    cuts = ((top_k > 0) & (top_k < logits_BV.shape[-1])) | (top_p < 1)  # top_k = V is top-k off, draw for draw
    sampled_B = jax.lax.cond(cuts, filtered, plain)
    return jnp.where(temperature > 0, sampled_B, jnp.argmax(logits_BV, axis=-1)).astype(jnp.int32)


def cache_lengths(prompt_len: int, n_new: int, windows: int = 4) -> list[int]:
    """Growing KV-cache lengths for decoding in up to `windows` windows: the last holds every position.

    Decoding position p reads the whole cache it is given, so giving the early steps a shorter cache cuts
    the bytes attention reads (the cost of decoding large batches) from P + n - 1 per step to about half
    that on average, for one cache copy per window and one compiled decode step per window."""
    steps = n_new - 1
    windows = max(1, min(windows, steps // 8))  # at least 8 steps per window
    return sorted({prompt_len + -(-w * steps // windows) for w in range(1, windows + 1)})


def _pad_cache(cache, length: int):
    """The cache (any layout `init_cache` makes) grown to `length` positions, new positions zero."""
    return jax.tree.map(lambda c: jnp.pad(c, [(0, 0)] * (c.ndim - 2) + [(0, length - c.shape[-2]), (0, 0)]), cache)


def _scan_in_windows(step, carry, cache, xs, first: int, lengths: list[int]):
    """`lax.scan` of `step((carry, cache), (position, x)) -> ((carry, cache), y)` over positions
    first, first + 1, ... (one per leading entry of `xs`), the cache grown window by window so that
    position p is decoded with a cache of the first length in `lengths` above p. Returns the final carry
    and the stacked ys."""
    ys, start = [], first
    for length in lengths:
        cache = _pad_cache(cache, length)
        x = jax.tree.map(lambda a: a[start - first:length - first], xs)  # noqa: B023
        (carry, cache), y = jax.lax.scan(step, (carry, cache), (jnp.arange(start, length), x))
        ys.append(y)
        start = length
    return carry, jax.tree.map(lambda *a: jnp.concatenate(a), *ys)


def generate_replicate(graphdef, params, prompt_BP, key, temperature, top_k, top_p, n_new: int, candidates: int,
                       mark: Watermark, penalty: float = 1.0):
    """Continue each prompt (BOS first) by `n_new` tokens `[B, n_new]`. With a watermark the carry also holds
    each row's last `mark.context` tokens (the prompt left-padded with BOS to start with); with a repetition
    `penalty` (static; 1: off) the tokens each row holds so far, prompt included."""
    model = nnx.merge(graphdef, params)
    B, P = prompt_BP.shape
    lengths = cache_lengths(P, n_new)
    logits_BPV, cache = model.decode(prompt_BP, model.init_cache(B, lengths[0]), 0)
    keys = jax.random.split(key, n_new)
    pick = partial(choose, temperature=temperature, top_k=top_k, top_p=top_p, candidates=candidates, mark=mark)
    C = mark.context if mark.on else 0
    bos_BC = jnp.broadcast_to(prompt_BP[:, :1], (B, C))
    window_BC = jnp.concatenate([bos_BC, prompt_BP[:, 1:]], axis=1)[:, -C:] if C else None
    V = logits_BPV.shape[-1]
    seen_BV = seen_tokens(prompt_BP, V) if penalty != 1 else None
    first_B = pick(penalize(logits_BPV[:, -1], seen_BV, penalty), keys[0], window_BC=window_BC)

    def slide(window_BC, token_B):
        return jnp.concatenate([window_BC[:, 1:], token_B[:, None]], axis=1) if C else None

    def step(carry, inputs):
        (token_B, window_BC, seen_BV), cache = carry
        pos, key = inputs
        logits_B1V, cache = model.decode(token_B[:, None], cache, pos)
        next_B = pick(penalize(logits_B1V[:, 0], seen_BV, penalty), key, window_BC=window_BC)
        return ((next_B, slide(window_BC, next_B), _seen(seen_BV, next_B)), cache), next_B

    start = (first_B, slide(window_BC, first_B), _seen(seen_BV, first_B))
    _, rest_XB = _scan_in_windows(step, start, cache, keys[1:], P, lengths)
    return jnp.concatenate([first_B[:, None], rest_XB.T], axis=1)


@partial(jax.jit, static_argnums=(0, 1, 8, 9, 10, 11))
def generate(graphdef, layout: Layout, params, prompt_RBP, key_data_R, temperature, top_k, top_p, n_new: int,
             candidates: int, mark: Watermark = Watermark(), penalty: float = 1.0):
    """`generate_replicate` for R replicates at once (params, prompts and raw key data with a leading axis R)."""
    def one(p, prompt, key_data):
        return generate_replicate(graphdef, p, prompt, jax.random.wrap_key_data(key_data), temperature, top_k, top_p,
                                  n_new, candidates, mark, penalty)

    return over_replicates(one, layout, params, prompt_RBP, key_data_R)


def _beam_search(graphdef, params, prompt_BP, n_new: int, beam: int, penalty: float = 1.0):
    """The most likely continuation `[B, n_new]` found by a beam of width `beam` (no length penalty: all
    continuations have the same length); with a repetition `penalty`, each beam's scores penalised by the tokens
    it holds (as Hugging Face's beam search with `repetition_penalty`)."""
    model = nnx.merge(graphdef, params)
    B, P = prompt_BP.shape
    K = beam
    lengths = cache_lengths(P, n_new)
    logits_BPV, cache = model.decode(prompt_BP, model.init_cache(B, lengths[0]), 0)
    cache = select_rows(cache, jnp.repeat(jnp.arange(B), K), model.n_heads)  # beam k of row b sits at b * K + k
    V = logits_BPV.shape[-1]

    def logp(logits_XV, seen_XV):  # X = B * K beams; HF's beam search penalises log-probabilities, unnormalised
        return penalize(jax.nn.log_softmax(logits_XV), seen_XV, penalty).reshape(B, K, V)

    def extend(seqs_BKX, scores_BK, seen_XV, logp_BKV, cache, i):
        """Keep the K best one-token extensions of the K beams; reorder sequences and caches to match."""
        scores_BK, flat_BK = jax.lax.top_k((scores_BK[:, :, None] + logp_BKV).reshape(B, K * V), K)
        parent_BK, token_BK = flat_BK // V, (flat_BK % V).astype(jnp.int32)
        seqs_BKX = jnp.take_along_axis(seqs_BKX, parent_BK[:, :, None], axis=1).at[:, :, i].set(token_BK)
        rows = (jnp.arange(B)[:, None] * K + parent_BK).reshape(-1)
        seen_XV = None if seen_XV is None else _seen(seen_XV[rows], token_BK.reshape(-1))
        return (seqs_BKX, scores_BK, token_BK, seen_XV), select_rows(cache, rows, model.n_heads)

    # One live beam to start with (the others at -inf), so the first step does not pick duplicates.
    scores_BK = jnp.where(jnp.arange(K) == 0, 0.0, -jnp.inf)[None].repeat(B, axis=0)
    seen_XV = jnp.repeat(seen_tokens(prompt_BP, V), K, axis=0) if penalty != 1 else None
    logp_BKV = logp(jnp.repeat(logits_BPV[:, -1], K, axis=0), seen_XV)
    carry, cache = extend(jnp.zeros((B, K, n_new), jnp.int32), scores_BK, seen_XV, logp_BKV, cache, 0)

    def step(carry_cache, inputs):
        (seqs_BKX, scores_BK, token_BK, seen_XV), cache = carry_cache
        pos, i = inputs
        logits, cache = model.decode(token_BK.reshape(B * K, 1), cache, pos)
        return extend(seqs_BKX, scores_BK, seen_XV, logp(logits[:, 0], seen_XV), cache, i), None

    (seqs_BKX, scores_BK, _, _), _ = _scan_in_windows(step, carry, cache, jnp.arange(1, n_new), P, lengths)
    best_B = jnp.argmax(scores_BK, axis=1)
    return jnp.take_along_axis(seqs_BKX, best_B[:, None, None], axis=1)[:, 0]


@partial(jax.jit, static_argnums=(0, 1, 4, 5, 6))
def beam_search(graphdef, layout: Layout, params, prompt_RBP, n_new: int, beam: int, penalty: float = 1.0):
    """`_beam_search` for R replicates at once."""
    return over_replicates(lambda p, prompt: _beam_search(graphdef, p, prompt, n_new, beam, penalty), layout,
                           params, prompt_RBP)
