"""A seeded ground-truth language with exact probabilities, so collapse can be measured against the truth.

The language is a probabilistic deterministic finite automaton (a unifilar hidden-Markov model):
every sequence starts in state 0; state s emits token x with probability P(x|s) and then moves to the
state next[s, x] (`transitions=token`: next[s, x] = class(x), a class bigram a small model learns from
little data; `transitions=state_token`: any function of (s, x), structure that reaches further back). Because the next state is a function of (s, x), the state path is a function of the
tokens, so log-probabilities, block entropies and unigrams are exact, not estimates.

Emissions are Zipfian with per-state jitter, P(x|s) ∝ (x+1)^-zipf_exponent · exp(state_sharpness · g[s, x])
with g iid standard normal. Token ids follow the Zipf rank of the base weight (id = rank - 1), so low ids
are frequent overall; the jitter averages out across states (the overall unigram stays heavy-tailed, but
the id order is the frequency order only roughly), while states differ, which gives sequential structure
beyond unigrams. The float32 table `log_emit_SV` *is* the language: sampling and `log_prob` use
it, and the exact float64 quantities are computed from it (renormalised in float64).

Shape suffixes: the package's (collapse/__init__.py), and S the automaton's states.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from collapse.data import FactsConfig, GrammarConfig, facts


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Grammar:
    """The automaton's tables; a pytree, so it can be passed into jitted functions."""

    log_emit_SV: jax.Array  # float32 log P(x|s)
    next_SV: jax.Array  # int32 state after emitting x in state s

    @property
    def n_states(self) -> int:
        return self.log_emit_SV.shape[0]

    @property
    def vocab_size(self) -> int:
        return self.log_emit_SV.shape[1]


def make_grammar(cfg: GrammarConfig) -> Grammar:
    """Builds the language from `cfg.language_seed` alone (NumPy PCG64: the same on every platform); for
    `data=facts` the grammar with its world of facts (`collapse.data.facts`)."""
    if isinstance(cfg, FactsConfig):  # the filler's grammar, then the world's states and tokens around it
        filler = make_grammar(facts.filler_config(cfg))
        log_emit_SV, next_SV = facts.log_tables(cfg, np.asarray(filler.log_emit_SV), np.asarray(filler.next_SV))
        return Grammar(jnp.asarray(log_emit_SV), jnp.asarray(next_SV))
    S, V = cfg.n_states, cfg.vocab_size
    rng = np.random.default_rng(cfg.language_seed)
    g_SV = rng.standard_normal((S, V))
    if cfg.transitions == "token":  # the next state is the class of the emitted token: a class bigram
        next_SV = np.broadcast_to(rng.integers(0, S, size=V), (S, V))
    else:  # "state_token": a function of state and token, so the state carries long-range structure
        next_SV = rng.integers(0, S, size=(S, V))
    logw_SV = -cfg.zipf_exponent * np.log(np.arange(1, V + 1)) + cfg.state_sharpness * g_SV
    logw_SV -= logw_SV.max(axis=1, keepdims=True)
    log_emit_SV = logw_SV - np.log(np.exp(logw_SV).sum(axis=1, keepdims=True))
    return Grammar(jnp.asarray(log_emit_SV, jnp.float32), jnp.asarray(next_SV, jnp.int32))


def sample(grammar: Grammar, key: jax.Array, n: int, seq_len: int) -> jax.Array:
    """Draws `n` iid sequences `[n, seq_len]` (int32) from the exact P(x|s); the same key gives the same tokens."""
    return extend(grammar, key, jnp.zeros((n, 0), jnp.int32), seq_len)


@functools.partial(jax.jit, static_argnames=("n_new",))
def extend(grammar: Grammar, key: jax.Array, prefix_NP: jax.Array, n_new: int) -> jax.Array:
    """Continues each prefix `[N, P]` by `n_new` tokens drawn from the exact P(x|s) `[N, n_new]`: the perfect
    continuation generator (what an ideal model would write after a human prompt)."""
    prefix_PN = jnp.asarray(prefix_NP, jnp.int32).T
    state_N, _ = jax.lax.scan(lambda s_N, x_N: (grammar.next_SV[s_N, x_N], None),
                              jnp.zeros(prefix_PN.shape[1], jnp.int32), prefix_PN)

    def step(state_N, key):
        x_N = jax.random.categorical(key, grammar.log_emit_SV[state_N])
        return grammar.next_SV[state_N, x_N], x_N

    _, tokens_TN = jax.lax.scan(step, state_N, jax.random.split(key, n_new))
    return tokens_TN.T.astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("first",))
def correct(grammar: Grammar, key: jax.Array, tokens_NT: jax.Array, first: int, fraction: jax.Array) -> jax.Array:
    """Each token at positions first..T-1 replaced, with probability `fraction`, by a draw from the exact
    P(x|s) given the corrected prefix `[N, T]` (int32): the truth as the ideal corrector (Gillman et al.).
    One scan over the positions tracks the state of the corrected sequence; position t's draws use
    `split(key, T - first)[t - first]`, split again into (replace?, token)."""
    tokens_TN = jnp.asarray(tokens_NT, jnp.int32).T
    state_N, _ = jax.lax.scan(lambda s_N, x_N: (grammar.next_SV[s_N, x_N], None),
                              jnp.zeros(tokens_TN.shape[1], jnp.int32), tokens_TN[:first])

    def step(state_N, inputs):
        x_N, key = inputs
        k_replace, k_draw = jax.random.split(key)
        draw_N = jax.random.categorical(k_draw, grammar.log_emit_SV[state_N])
        y_N = jnp.where(jax.random.uniform(k_replace, x_N.shape) < fraction, draw_N, x_N).astype(jnp.int32)
        return grammar.next_SV[state_N, y_N], y_N

    _, new_TN = jax.lax.scan(step, state_N, (tokens_TN[first:], jax.random.split(key, tokens_TN.shape[0] - first)))
    return jnp.concatenate([tokens_TN[:first], new_TN]).T


@functools.partial(jax.jit, static_argnames=("first",))
def correct_sequences(grammar: Grammar, key: jax.Array, tokens_NT: jax.Array, first: int, fraction: jax.Array
                      ) -> jax.Array:
    """Each sample's positions first..T-1 replaced, with probability `fraction`, by the truth's continuation
    of its first `first` tokens `[N, T]` (int32): Gillman et al.'s γ-ideal corrector, whose corrected samples
    are the mixture (1 - fraction) q + fraction p, every kept sequence consistent with itself."""
    k_pick, k_new = jax.random.split(key)
    tokens_NT = jnp.asarray(tokens_NT, jnp.int32)
    new_NT = extend(grammar, k_new, tokens_NT[:, :first], tokens_NT.shape[1] - first)
    pick_N1 = (jax.random.uniform(k_pick, (tokens_NT.shape[0],)) < fraction)[:, None]
    return tokens_NT.at[:, first:].set(jnp.where(pick_N1, new_NT, tokens_NT[:, first:]))


@jax.jit
def log_prob(grammar: Grammar, tokens_NT: jax.Array) -> jax.Array:
    """Exact log P(x_1..x_T) `[N]` (float32), tracking the state (the forward algorithm of a unifilar HMM).

    A token outside [0, V) has probability 0 under the language, so its sequence gets -inf (not a wrapped or
    clamped index's value).
    """
    V = grammar.vocab_size

    def step(state_N, x_N):
        ok_N = (x_N >= 0) & (x_N < V)
        x_N = jnp.clip(x_N, 0, V - 1)
        lp_N = jnp.where(ok_N, grammar.log_emit_SV[state_N, x_N], -jnp.inf)
        return grammar.next_SV[state_N, x_N], lp_N

    tokens_TN = jnp.asarray(tokens_NT, jnp.int32).T
    _, lp_TN = jax.lax.scan(step, jnp.zeros(tokens_TN.shape[1], jnp.int32), tokens_TN)
    return lp_TN.sum(axis=0)


def true_logprob(grammar: Grammar, tokens_NT: np.ndarray, first: int = 0) -> np.ndarray:
    """Exact log p_true of each sequence's tokens first..T-1 given the ones before `[N]` (float64)."""
    joint_N = np.asarray(log_prob(grammar, tokens_NT), np.float64)
    if first == 0:
        return joint_N
    return joint_N - np.asarray(log_prob(grammar, tokens_NT[:, :first]), np.float64)


# ------------------------------------------------------------------- exact quantities (float64, host)


def _tables(grammar: Grammar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 emissions P(x|s) `[S, V]`, state transitions P(s'|s) `[S, S]`, emission entropies `[S]`."""
    logw_SV = np.asarray(grammar.log_emit_SV, np.float64)
    emit_SV = np.exp(logw_SV - logw_SV.max(axis=1, keepdims=True))
    emit_SV /= emit_SV.sum(axis=1, keepdims=True)
    S, V = emit_SV.shape
    trans_SS = np.zeros((S, S))
    np.add.at(trans_SS, (np.repeat(np.arange(S), V), np.asarray(grammar.next_SV).ravel()), emit_SV.ravel())
    h_S = -(emit_SV * np.log(np.where(emit_SV > 0, emit_SV, 1.0))).sum(axis=1)
    return emit_SV, trans_SS, h_S


def _occupancy(trans_SS: np.ndarray, seq_len: int, first: int = 0) -> np.ndarray:
    """Mean over positions t = first+1..T of P(S_t = s) `[S]`, starting in state 0."""
    p_S = np.eye(len(trans_SS))[0]
    total_S = np.zeros_like(p_S)
    for t in range(seq_len):
        if t >= first:
            total_S += p_S
        p_S = p_S @ trans_SS
    return total_S / (seq_len - first)


def _stationary(trans_SS: np.ndarray) -> np.ndarray:
    """Long-run state occupancy from state 0: the Cesàro limit lim (1/n) sum_{t<n} e_0 P^t.

    Always defined. If the chain is irreducible this is its unique stationary distribution (periodic or
    not); if it has several closed classes it is their stationary distributions weighted by the
    probability of ending up in each from state 0. Computed as e_0 L^(2^k) for the lazy chain
    L = (I + P) / 2 (same closed classes and stationary distributions, but aperiodic, so its powers
    converge) by repeated squaring, renormalising rows against rounding.
    """
    L_SS = (np.eye(len(trans_SS)) + trans_SS) / 2
    for _ in range(64):  # up to L^(2^64)
        L2_SS = L_SS @ L_SS
        L2_SS /= L2_SS.sum(axis=1, keepdims=True)
        converged = np.abs(L2_SS - L_SS).max() <= 1e-15
        L_SS = L2_SS
        if converged:
            break
    return L_SS[0]


def block_entropy(grammar: Grammar, seq_len: int) -> float:
    """Exact H(X_1..X_T) / T in nats per token: sum_t H(X_t | X_<t) = sum_t sum_s P(S_t = s) H(P(.|s))."""
    _, trans_SS, h_S = _tables(grammar)
    return float(_occupancy(trans_SS, seq_len) @ h_S)


def entropy_rate(grammar: Grammar) -> float:
    """Exact lim_T block_entropy: sum_s pi(s) H(P(.|s)), pi the long-run occupancy from state 0."""
    _, trans_SS, h_S = _tables(grammar)
    return float(_stationary(trans_SS) @ h_S)


def unigram(grammar: Grammar, seq_len: int, first: int = 0) -> np.ndarray:
    """Exact token marginal `[V]` averaged over positions first+1..T of length-T sequences: the expected
    frequencies of a corpus of those positions (`first` > 0: the continuations of `first`-token prompts)."""
    emit_SV, trans_SS, _ = _tables(grammar)
    return _occupancy(trans_SS, seq_len, first) @ emit_SV


def stationary_unigram(grammar: Grammar) -> np.ndarray:
    """Exact long-run token marginal `[V]`: sum_s pi(s) P(x|s), the limit of `unigram` as T grows."""
    emit_SV, trans_SS, _ = _tables(grammar)
    return _stationary(trans_SS) @ emit_SV
