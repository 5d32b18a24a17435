"""A world of facts inside the ground-truth language (`data=facts`), so that knowing a fact and stating a
false one are exact, measured quantities (docs/metrics.md#knowledge-and-hallucination).

The world: E entities x L relations, each fact (e, l) with exactly one true value among relation l's own K
value tokens, drawn uniformly from `language_seed` (a NumPy stream of its own, so the filler is exactly the
grammar of its tokens). Entity e (0 the most frequent) opens a statement with weight (e + 1)^-entity_zipf.

The language is still a probabilistic deterministic automaton (`collapse.data.grammar.Grammar`), so every
truth-based instrument works unchanged (`log_prob`, `kl_true`, `true_nll_samples`, the `_true` tails,
`curate=verifier`, `curate=correct`). Its states: the filler's S states, then one state per entity (a
statement opened, its relation pending), then one per fact (entity and relation stated, the value pending;
the last E L states, fact f = e L + l):

    filler state s:  filler token x with (1 - fact_rate) P_filler(x | s) -> the filler's next state
                     entity token e with fact_rate p(e)                   -> entity state e
    entity state e:  relation token l with 1 / L                          -> fact state (e, l)
    fact state (e, l): its true value's token with probability 1          -> the value token's filler class

then every row mixed with the uniform distribution, (1 - floor) P + floor / V, so that any token is possible
(a false value has probability floor / V); a token off the structure moves to the filler class of the token
(an entity token always to its entity state). Token ids: the filler 0..F-1 (the grammar's, Zipf-ranked),
then the E entity tokens, the L relation tokens and the L K value tokens (relation l's values are
first_value + l K .. first_value + (l + 1) K - 1).

Shape suffixes: the package's (collapse/__init__.py), and E entities, L relations, K values of a relation,
S the filler's states, F the filler's tokens, Z all the automaton's states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.data import FactsConfig, GrammarConfig


@dataclass(frozen=True, eq=False)
class World:
    """The knowledge base and its token layout (NumPy only)."""

    n_filler: int  # F filler tokens: ids 0..F-1
    entity_p_E: np.ndarray  # float64 probability that a statement is about entity e (Zipf over ranks)
    value_EL: np.ndarray  # int64 the true value of (e, l), an index 0..K-1 into relation l's values
    n_values: int  # K values per relation

    @property
    def n_entities(self) -> int:
        return len(self.entity_p_E)

    @property
    def n_relations(self) -> int:
        return self.value_EL.shape[1]

    @property
    def n_facts(self) -> int:
        return self.value_EL.size

    @property
    def first_entity(self) -> int:
        return self.n_filler

    @property
    def first_relation(self) -> int:
        return self.n_filler + self.n_entities

    @property
    def first_value(self) -> int:
        return self.first_relation + self.n_relations

    @property
    def n_value_tokens(self) -> int:
        return self.n_relations * self.n_values

    @property
    def vocab_size(self) -> int:
        return self.first_value + self.n_value_tokens

    def true_value_token_EL(self) -> np.ndarray:
        """The token id of each fact's true value `[E, L]`."""
        return self.first_value + np.arange(self.n_relations) * self.n_values + self.value_EL

    def prompts(self) -> np.ndarray:
        """The closed-book prompt "entity relation" of every fact, fact f = e L + l `[E L, 2]` (int32)."""
        e, l = np.divmod(np.arange(self.n_facts), self.n_relations)
        return np.stack([self.first_entity + e, self.first_relation + l], axis=1).astype(np.int32)

    def statement_tokens(self, e: int, l: int, value: int | None = None) -> list[int]:
        """The three tokens stating fact (e, l) with value index `value` (None: its true value)."""
        value = self.value_EL[e, l] if value is None else value
        return [self.first_entity + e, self.first_relation + l, self.first_value + l * self.n_values + value]


def make_world(cfg: FactsConfig) -> World:
    """The world of `cfg.language_seed` (NumPy PCG64 on the seed sequence (language_seed, 1): the same on every
    platform, and apart from the filler's own draws)."""
    rng = np.random.default_rng([cfg.language_seed, 1])
    weight_E = np.arange(1, cfg.n_entities + 1, dtype=np.float64) ** -cfg.entity_zipf
    value_EL = rng.integers(0, cfg.n_values, size=(cfg.n_entities, cfg.n_relations))
    return World(cfg.vocab_size - cfg.knowledge_tokens, weight_E / weight_E.sum(), value_EL, cfg.n_values)


def filler_config(cfg: FactsConfig) -> GrammarConfig:
    """The grammar of the filler tokens: `cfg`'s grammar keys over the F tokens the world leaves."""
    return GrammarConfig(vocab_size=cfg.vocab_size - cfg.knowledge_tokens, n_states=cfg.n_states,
                         zipf_exponent=cfg.zipf_exponent, state_sharpness=cfg.state_sharpness,
                         transitions=cfg.transitions, language_seed=cfg.language_seed)


def tables(cfg: FactsConfig, world: World, filler_log_emit_SF: np.ndarray, filler_next_SF: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """The automaton's float64 emissions P(x | z) `[Z, V]` (rows sum to 1, floor included) and next states
    `[Z, V]` (int32) from the filler's tables (as `make_grammar` builds them for `filler_config`)."""
    S, F, V = cfg.n_states, world.n_filler, world.vocab_size
    E, L = world.n_entities, world.n_relations
    Z = S + E + E * L
    rng = np.random.default_rng([cfg.language_seed, 2])
    class_X = rng.integers(0, S, size=V - F)  # the filler state after each knowledge token, when it ends a statement
    filler_SF = np.exp(np.asarray(filler_log_emit_SF, np.float64))
    filler_SF /= filler_SF.sum(axis=1, keepdims=True)

    emit_ZV = np.zeros((Z, V))
    emit_ZV[:S, :F] = (1 - cfg.fact_rate) * filler_SF
    emit_ZV[:S, F:F + E] = cfg.fact_rate * world.entity_p_E
    entity_states_E = S + np.arange(E)
    emit_ZV[S:S + E, world.first_relation:world.first_value] = 1 / L
    fact_states_EL = S + E + np.arange(E * L).reshape(E, L)
    emit_ZV[fact_states_EL.ravel(), world.true_value_token_EL().ravel()] = 1.0
    emit_ZV = (1 - cfg.floor) * emit_ZV + cfg.floor / V

    class_V = np.concatenate([np.asarray(filler_next_SF)[0], class_X])  # the filler's row 0 for filler tokens
    next_ZV = np.broadcast_to(class_V, (Z, V)).copy()
    next_ZV[:S, :F] = filler_next_SF
    next_ZV[:, F:F + E] = entity_states_E
    next_ZV[S:S + E, world.first_relation:world.first_value] = fact_states_EL
    return emit_ZV, next_ZV.astype(np.int32)


def log_tables(cfg: FactsConfig, filler_log_emit_SF: np.ndarray, filler_next_SF: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """The language of `cfg` as `collapse.data.grammar.make_grammar` holds it: float32 log-emissions `[Z, V]`
    (-inf where `floor` is 0) and int32 next states, from the filler grammar's tables."""
    emit_ZV, next_ZV = tables(cfg, make_world(cfg), filler_log_emit_SF, filler_next_SF)
    with np.errstate(divide="ignore"):
        return np.log(emit_ZV).astype(np.float32), next_ZV
