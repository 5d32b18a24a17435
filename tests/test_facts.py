"""`data=facts`: the world of facts inside the ground-truth language (collapse.data.facts). Determinism under the
seed, the automaton against its definition, exact log-probabilities of hand-written documents, and the bad
values refused naming their key."""

import jax
import numpy as np
import pytest

from collapse.data import FactsConfig, GrammarConfig
from collapse.data import facts, grammar
from collapse.data.human import load_human
from collapse.errors import ConfigError

# 40 filler tokens, 6 entities, 2 relations of 3 values: vocabulary 40 + 6 + 2 + 6 = 54; 4 + 6 + 12 = 22 states.
SMALL = dict(vocab_size=54, n_states=4, n_entities=6, n_relations=2, n_values=3, n_train=64, n_valid=16, n_test=16,
             seq_len=16)


def _cfg(**kw) -> FactsConfig:
    return FactsConfig(**{**SMALL, **kw})


def test_the_world_and_its_language_depend_on_the_language_seed_alone():
    cfg = _cfg()
    a, b = facts.make_world(cfg), facts.make_world(_cfg())
    np.testing.assert_array_equal(a.value_EL, b.value_EL)
    np.testing.assert_array_equal(a.entity_p_E, b.entity_p_E)
    g1, g2 = grammar.make_grammar(cfg), grammar.make_grammar(_cfg(n_train=128))  # sizes do not change the language
    np.testing.assert_array_equal(g1.log_emit_SV, g2.log_emit_SV)
    np.testing.assert_array_equal(g1.next_SV, g2.next_SV)
    other = grammar.make_grammar(_cfg(language_seed=1))
    assert not np.array_equal(facts.make_world(_cfg(language_seed=1)).value_EL, a.value_EL)
    assert not np.array_equal(other.log_emit_SV, g1.log_emit_SV)
    key = jax.random.key(3)
    np.testing.assert_array_equal(grammar.sample(g1, key, 8, 16), grammar.sample(g2, key, 8, 16))
    h1, h2 = load_human(cfg, 0, 2), load_human(cfg, 0, 2)  # the human data: the truth's draws from the seed
    np.testing.assert_array_equal(h1.train, h2.train)
    assert h1.facts is not None and h1.truth.vocab_size == cfg.vocab_size == h1.facts.vocab_size
    assert not np.array_equal(load_human(cfg, 1, 2).train, h1.train)


def test_the_automaton_is_its_definition():
    cfg = _cfg(floor=0.0, fact_rate=0.25)
    world, g = facts.make_world(cfg), grammar.make_grammar(cfg)
    p_ZV = np.exp(np.asarray(g.log_emit_SV, np.float64))
    next_ZV = np.asarray(g.next_SV)
    S, E, L, F = 4, 6, 2, world.n_filler
    assert (F, world.first_relation, world.first_value, world.vocab_size) == (40, 46, 48, 54)
    assert p_ZV.shape == (S + E + E * L, 54)
    np.testing.assert_allclose(p_ZV.sum(axis=1), 1.0, rtol=1e-6)
    filler = grammar.make_grammar(facts.filler_config(cfg))  # the filler is the grammar of its 40 tokens
    filler_SF = np.exp(np.asarray(filler.log_emit_SV, np.float64))
    np.testing.assert_allclose(p_ZV[:S, :F], 0.75 * filler_SF / filler_SF.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(next_ZV[:S, :F], filler.next_SV)
    zipf_E = 1 / np.arange(1, E + 1)
    np.testing.assert_allclose(p_ZV[:S, F:F + E], np.tile(0.25 * zipf_E / zipf_E.sum(), (S, 1)), rtol=1e-6)
    np.testing.assert_array_equal(next_ZV[:, F:F + E], np.tile(S + np.arange(E), (len(p_ZV), 1)))
    for e in range(E):
        np.testing.assert_allclose(p_ZV[S + e, 46:48], 0.5, rtol=1e-6)  # relations uniformly
        for l in range(L):
            fact_state = S + E + e * L + l
            assert next_ZV[S + e, 46 + l] == fact_state
            truth = world.statement_tokens(e, l)[2]
            assert p_ZV[fact_state, truth] == pytest.approx(1.0) and p_ZV[fact_state].max() == p_ZV[fact_state, truth]
            assert 48 + l * 3 <= truth < 48 + (l + 1) * 3  # relation l's own values
    np.testing.assert_array_equal(world.true_value_token_EL().ravel(), np.argmax(p_ZV[-E * L:], axis=1))


def test_documents_have_exact_log_probabilities():
    """A hand-written document's probability is the product of the definition's factors, floor included; a
    false statement costs log(V / floor) nats, and with floor 0 it is impossible."""
    cfg = _cfg(fact_rate=0.2, floor=1e-3)
    world, g = facts.make_world(cfg), grammar.make_grammar(cfg)
    filler = grammar.make_grammar(facts.filler_config(cfg))
    filler_SF = np.exp(np.asarray(filler.log_emit_SV, np.float64))
    filler_SF /= filler_SF.sum(axis=1, keepdims=True)
    V, floor = 54, 1e-3
    mix = lambda p: (1 - floor) * p + floor / V  # noqa: E731
    e, l, x = 2, 1, 5
    doc = [x, *world.statement_tokens(e, l), x]
    after = int(np.asarray(g.next_SV)[4 + 6 + e * 2 + l, doc[3]])  # the value token's filler class
    expected = (np.log(mix(0.8 * filler_SF[0, x])) + np.log(mix(0.2 * world.entity_p_E[e])) + np.log(mix(0.5))
                + np.log(mix(1.0)) + np.log(mix(0.8 * filler_SF[after, x])))
    assert after < 4  # a filler state
    assert grammar.true_logprob(g, np.array([doc], np.int32))[0] == pytest.approx(expected, rel=1e-5)
    wrong = (world.value_EL[e, l] + 1) % 3
    false_doc = [x, *world.statement_tokens(e, l, wrong)]
    lp_true, lp_false = grammar.true_logprob(g, np.array([doc[:4], false_doc], np.int32))
    assert lp_false - lp_true == pytest.approx(np.log(mix(0.0)) - np.log(mix(1.0)), rel=1e-5)
    impossible = grammar.make_grammar(_cfg(floor=0.0))
    assert grammar.true_logprob(impossible, np.array([false_doc], np.int32))[0] == -np.inf
    assert np.isfinite(grammar.true_logprob(impossible, np.array([doc], np.int32))[0])


def test_entities_are_stated_as_often_as_their_zipf_weights():
    """The exact unigram of the entity tokens is proportional to rank^-entity_zipf (floor 0: nothing else)."""
    cfg = _cfg(floor=0.0, entity_zipf=1.5)
    world, g = facts.make_world(cfg), grammar.make_grammar(cfg)
    u_V = grammar.unigram(g, 64)
    entity_V = u_V[world.first_entity:world.first_relation]
    np.testing.assert_allclose(entity_V / entity_V.sum(), world.entity_p_E, rtol=1e-6)  # the float32 table
    np.testing.assert_allclose(world.entity_p_E, np.arange(1, 7) ** -1.5 / (np.arange(1, 7) ** -1.5).sum())
    # every statement is complete but at the end of a sequence: relations and values follow entities
    assert u_V[world.first_relation:world.first_value].sum() <= entity_V.sum()


@pytest.mark.parametrize("kw,key", [
    (dict(n_relations=55), "data.n_relations"),  # more relations than tokens
    (dict(n_values=60), "data.n_values"),  # a value set larger than the vocabulary
    (dict(n_values=30), "data.n_values"),  # value sets together larger than the vocabulary
    (dict(n_values=1), "data.n_values"),
    (dict(n_entities=60), "data.n_entities"),
    (dict(n_entities=45), "data.vocab_size"),  # no room for filler tokens
    (dict(n_entities=0), "data.n_entities"),
    (dict(fact_rate=1.0), "data.fact_rate"),
    (dict(fact_rate=0.0), "data.fact_rate"),
    (dict(floor=1.0), "data.floor"),
    (dict(floor=-0.1), "data.floor"),
    (dict(entity_zipf=-1.0), "data.entity_zipf"),
    (dict(vocab_size=5000, n_entities=1024, n_relations=8), "data.n_entities"),  # 9 220 automaton states
])
def test_bad_values_are_refused_naming_the_key(kw, key):
    with pytest.raises(ConfigError) as info:
        _cfg(**kw).validate()
    assert info.value.key == key


def test_facts_is_a_data_option_with_a_truth():
    from collapse.config import Config
    from collapse.validate import validate
    from tests.helpers import compose_cfg

    cfg = compose_cfg("data=facts", "data.n_entities=32")
    assert isinstance(cfg.data, FactsConfig) and cfg.data.name == "facts" and cfg.data.has_truth
    assert cfg.data.n_entities == 32 and isinstance(cfg.data, GrammarConfig)
    validate(Config(data=_cfg()))
    with pytest.raises(ConfigError, match="data.n_relations"):
        validate(Config(data=_cfg(n_relations=100)))
