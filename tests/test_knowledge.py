"""Knowledge and hallucination metrics (collapse.metrics.knowledge): every metric against a hand computation on
a hand-made corpus and a hand-set model, the null tests (a truth-drawn corpus, the truth answering
closed-book), error reinforcement against its chance rate, and a tiny model that learns the head facts."""

import jax
import numpy as np
import pytest

from collapse.config import MetricsConfig
from collapse.data import FactsConfig, facts, grammar
from collapse.data.facts import World
from collapse.data.human import HumanData, load_human
from collapse.metrics import knowledge, score
from collapse.metrics.families import family_of

# A hand-made world: 4 filler tokens (0..3), entities 4, 5, 6, relations 7, 8, values 9..11 (relation 0) and
# 12..14 (relation 1). True values: (e0, r0) 10, (e0, r1) 12, (e1, r0) 11, (e1, r1) 14, (e2, r0) 9, (e2, r1) 13.
WORLD = World(4, np.array([0.5, 0.35, 0.15]), np.array([[1, 0], [2, 2], [0, 1]]), 3)
BUCKETS_F = np.array([0, 0, 1, 1, 2, 2])  # entity 0 head, 1 torso, 2 tail


def test_the_hand_world_layout():
    assert (WORLD.first_entity, WORLD.first_relation, WORLD.first_value, WORLD.vocab_size) == (4, 7, 9, 15)
    np.testing.assert_array_equal(WORLD.true_value_token_EL(), [[10, 12], [11, 14], [9, 13]])
    np.testing.assert_array_equal(WORLD.prompts(), [[4, 7], [4, 8], [5, 7], [5, 8], [6, 7], [6, 8]])
    np.testing.assert_array_equal(knowledge.true_value_F(WORLD), [1, 3, 2, 5, 0, 4])
    # the buckets cut the entities' probabilities as the tails cut types: 0.5 is half the mass, 0.15 the tail
    np.testing.assert_array_equal(knowledge.fact_buckets(WORLD, 0.5, 0.1), BUCKETS_F)


# Statements: (e0 r0 10) true, (e0 r0 11) false, (e0 r1 12) true, (e1 r0 9) false, (e0 r0 10) true again, a value
# of the other relation (e2 r1 9) false, and two patterns that are not statements: one cut by the row's end
# (4 7), one whose third token is filler (5 8 0).
CORPUS = np.array([
    [0, 4, 7, 10, 1, 4, 7, 11, 2, 4, 8],
    [4, 8, 12, 5, 7, 9, 3, 4, 7, 10, 0],
    [6, 8, 9, 5, 8, 0, 1, 2, 3, 4, 7],
])


def test_statements_are_counted_by_fact_and_value():
    counts_FW = knowledge.fact_value_counts(WORLD, CORPUS)
    expected = np.zeros((6, 6), int)
    expected[0, 1] = 2  # (e0, r0) stated with 10 twice
    expected[0, 2] = 1  # ... and with 11
    expected[1, 3] = 1  # (e0, r1) with 12
    expected[2, 0] = 1  # (e1, r0) with 9
    expected[5, 0] = 1  # (e2, r1) with 9, relation 0's value
    np.testing.assert_array_equal(counts_FW, expected)
    assert counts_FW.dtype == np.int32


def test_sample_metrics_by_hand():
    m = knowledge.sample_metrics(WORLD, knowledge.fact_value_counts(WORLD, CORPUS), BUCKETS_F, CORPUS.size)
    assert m["fact_statement_rate"] == pytest.approx(6 / 33)
    assert m["hallucination_rate"] == pytest.approx(3 / 6) and m["factual_precision"] == pytest.approx(3 / 6)
    assert m["hallucination_rate_head"] == pytest.approx(1 / 4) and m["factual_precision_head"] == pytest.approx(3 / 4)
    assert m["hallucination_rate_torso"] == 1.0 and m["factual_precision_torso"] == 0.0
    assert m["hallucination_rate_tail"] == 1.0
    assert m["fact_coverage"] == pytest.approx(2 / 6)  # (e0, r0) and (e0, r1)
    assert (m["fact_coverage_head"], m["fact_coverage_torso"], m["fact_coverage_tail"]) == (1.0, 0.0, 0.0)
    empty = knowledge.sample_metrics(WORLD, np.zeros((6, 6), int), BUCKETS_F, 10)
    assert np.isnan(empty["hallucination_rate"]) and empty["fact_coverage"] == 0 and empty["fact_statement_rate"] == 0


def test_closed_book_by_hand():
    """A hand-set model: p(true value) and whether it is the argmax over the whole vocabulary."""
    p_FV = np.full((6, 15), 0.01)
    truth_F = WORLD.true_value_token_EL().ravel()
    for f, p_true, rival in [(0, 0.5, 0.2), (1, 0.3, 0.4), (2, 0.9, 0.0), (3, 0.1, 0.2), (4, 0.2, 0.1), (5, 0.0, 0.6)]:
        p_FV[f, truth_F[f]] = p_true
        p_FV[f, 0] = rival  # a filler token competes with the true value
    with np.errstate(divide="ignore"):
        m = knowledge.closed_book(WORLD, np.log(p_FV), BUCKETS_F)
    assert m["closed_book_prob"] == pytest.approx((0.5 + 0.3 + 0.9 + 0.1 + 0.2 + 0.0) / 6)
    assert m["closed_book_prob_head"] == pytest.approx(0.4) and m["closed_book_prob_tail"] == pytest.approx(0.1)
    assert m["closed_book_acc"] == pytest.approx(3 / 6)
    assert (m["closed_book_acc_head"], m["closed_book_acc_torso"], m["closed_book_acc_tail"]) == (0.5, 0.5, 0.5)


def test_error_reinforcement_by_hand():
    """Before: (e0, r0) falsely 11 and 9, (e1, r1) falsely 12. After: (e0, r0) 11 again and 10 (true), (e1, r0)
    falsely 10, (e1, r1) falsely 13 twice. Relation 0's false statements after: 11 (once, about e0) and 10 (once,
    about e1); relation 1's: 13 twice."""
    before, after = np.zeros((6, 6), int), np.zeros((6, 6), int)
    before[0, 2] = before[0, 0] = before[3, 3] = 1
    before[0, 1] = 5  # true statements are not errors
    after[0, 2], after[0, 1], after[2, 1], after[3, 4] = 1, 1, 1, 2
    m = knowledge.error_reinforcement(WORLD, before, after)
    assert m["error_repeat"] == pytest.approx(1 / 3)  # 11 about (e0, r0) came back; 9 and 12 did not
    # chance: (e0, r0), 1 false statement after, relation 0's false values {11: 1, 10: 1} without its true 10:
    # q(11) = 1, q(9) = 0; (e1, r1), 2 false statements, relation 1's {13: 2} without its true 14: q(12) = 0
    assert m["error_repeat_chance"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    nothing = knowledge.error_reinforcement(WORLD, np.zeros((6, 6), int), after)
    assert np.isnan(nothing["error_repeat"]) and np.isnan(nothing["error_repeat_chance"])


def test_error_reinforcement_reads_chance_without_memory():
    """Null: a later generation that draws its false values afresh from its relation's pooled false values
    (knowing how it errs, not which errors it made) repeats the earlier errors at the chance rate."""
    rng = np.random.default_rng(0)
    E, L, K = 200, 2, 6
    world = World(4, np.full(E, 1 / E), rng.integers(0, K, (E, L)), K)
    truth_F = knowledge.true_value_F(world)
    prior_W = rng.dirichlet(np.ones(L * K))  # how this model errs: a skewed preference among value tokens
    repeat, chance = [], []
    for _ in range(20):
        counts = []
        for _ in range(2):
            c_FW = np.zeros((E * L, L * K), int)
            for f in range(E * L):
                q_W = prior_W.copy()
                q_W[truth_F[f]] = 0
                c_FW[f] = rng.multinomial(rng.poisson(2), q_W / q_W.sum())
            counts.append(c_FW)
        m = knowledge.error_reinforcement(world, *counts)
        repeat.append(m["error_repeat"])
        chance.append(m["error_repeat_chance"])
    # paired by simulation: the mean difference within 4 of its standard errors (each simulation's repeat share
    # is a mean over ~730 earlier errors, sd ~0.012; q pools the fact's own draws too, a bias of order 1e-3)
    diff = np.array(repeat) - np.array(chance)
    assert abs(diff.mean()) <= 4 * diff.std(ddof=1) / np.sqrt(len(diff))
    assert 0.1 < np.mean(chance) < 0.9
    # and a generation that restates exactly its predecessor's errors repeats all of them
    assert knowledge.error_reinforcement(world, counts[0], counts[0])["error_repeat"] == 1.0


SMALL = FactsConfig(vocab_size=96, n_states=4, n_entities=32, n_relations=2, n_values=4, entity_zipf=1.5,
                    n_train=128, n_valid=64, n_test=64, seq_len=32)
CFG = MetricsConfig(ngram_sample=500, self_bleu_subset=16)


def test_null_a_truth_drawn_corpus_and_the_truth_closed_book():
    """A corpus drawn from the truth states no false value (precision 1, hallucination 0) and covers the facts
    as an independent human sample of the same size does; the truth answering closed-book reads 1 in every
    bucket (the human row holds both)."""
    human = load_human(SMALL, 0, 2)
    world, g = human.facts, human.truth
    buckets_F = knowledge.fact_buckets(world, CFG.head_mass, CFG.tail_mass)
    assert set(buckets_F) == {0, 1, 2}
    truth_m = knowledge.closed_book(world, knowledge.truth_closed_book(world, g), buckets_F)
    for name in ("closed_book_acc", "closed_book_acc_head", "closed_book_acc_torso", "closed_book_acc_tail"):
        assert truth_m[name] == 1.0
    assert truth_m["closed_book_prob"] == pytest.approx(1 - SMALL.floor, abs=1e-6)
    coverage = {"human": [], "truth": []}
    for i in range(8):
        key = jax.random.fold_in(jax.random.key(5), i)
        for name, k in (("human", 0), ("truth", 1)):
            corpus = np.asarray(grammar.sample(g, jax.random.fold_in(key, k), SMALL.n_train, SMALL.seq_len))
            m = knowledge.sample_metrics(world, knowledge.fact_value_counts(world, corpus), buckets_F, corpus.size)
            assert m["hallucination_rate"] == 0.0 and m["factual_precision"] == 1.0
            coverage[name].append([m[f"fact_coverage_{b}"] for b in knowledge.BUCKETS])
    human_B, truth_B = np.mean(coverage["human"], axis=0), np.mean(coverage["truth"], axis=0)
    # the same coverage in expectation: the mean difference of 8 pairs within 4 of its standard errors
    diff_IB = np.array(coverage["truth"]) - np.array(coverage["human"])
    assert np.all(np.abs(diff_IB.mean(axis=0)) <= 4 * diff_IB.std(axis=0, ddof=1) / np.sqrt(8) + 1e-9)
    assert human_B[0] == 1.0 and 0 < truth_B[2] < 1  # the head all covered, the tail in part: sharp
    row = score.human_reference(CFG, human, score.reference(human, CFG), np.random.default_rng(0))
    assert row["hallucination_rate"] == 0.0 and row["closed_book_acc_tail"] == 1.0


class TableFamily:
    """A hand-set model: fixed next-token log-probabilities after every fact prompt, uniform elsewhere."""

    def __init__(self, world, logprob_FV):
        self.world, self.logprob_FV = world, logprob_FV

    def logprob(self, params_R, tokens_RNT, batch=256, skip=0):
        return np.full(tokens_RNT.shape[:2], -np.log(self.world.vocab_size) * (tokens_RNT.shape[2] - skip))

    def next_token_mass(self, params_R, tokens_RNT, batch=256, first=0):
        return np.full((tokens_RNT.shape[0], self.world.vocab_size), 1 / self.world.vocab_size)

    def next_token_logprobs(self, params_R, prompts_RNP, batch=1024):
        index = {tuple(p): f for f, p in enumerate(self.world.prompts())}
        return np.stack([[self.logprob_FV[index[tuple(p)]] for p in prompts] for prompts in prompts_RNP])


def test_generation_metrics_on_facts():
    """Through `score.generation_metrics`: the closed-book rows of the hand-set model, the samples' statements,
    their counts kept, and error reinforcement from the previous generation's counts."""
    human = load_human(SMALL, 0, 2)
    world = human.facts
    rng = np.random.default_rng(1)
    logits_FV = rng.normal(size=(world.n_facts, world.vocab_size))
    logprob_FV = logits_FV - np.log(np.exp(logits_FV).sum(axis=1, keepdims=True))
    samples = np.array(grammar.sample(human.truth, jax.random.key(9), 64, SMALL.seq_len))
    samples[:, 3] = world.first_value  # some false statements, whatever the truth
    before_FW = knowledge.fact_value_counts(world, samples[:32])
    values, arrays = score.generation_metrics(CFG, TableFamily(world, logprob_FV), None, None, [human],
                                              [score.reference(human, CFG)], [samples], [np.random.default_rng(0)],
                                              previous=lambda r, name: before_FW)
    buckets_F = knowledge.fact_buckets(world, CFG.head_mass, CFG.tail_mass)
    m = values[0]
    for name, value in knowledge.closed_book(world, logprob_FV, buckets_F).items():
        assert m[name] == pytest.approx(value)
    np.testing.assert_array_equal(arrays[0]["fact_counts"], knowledge.fact_value_counts(world, samples))
    expected = knowledge.sample_metrics(world, arrays[0]["fact_counts"], buckets_F, samples.size)
    assert {k: m[k] for k in expected} == pytest.approx(expected, nan_ok=True)
    assert m["hallucination_rate"] > 0
    reinforcement = knowledge.error_reinforcement(world, before_FW, arrays[0]["fact_counts"])
    assert {k: m[k] for k in reinforcement} == pytest.approx(reinforcement, nan_ok=True)
    assert all(family_of(name) == "knowledge" for name in [*expected, "closed_book_acc_tail", "error_repeat_chance"])


def test_a_tiny_model_learns_the_head_facts():
    """The instrument sees learning: a small transformer trained 200 steps on the truth's documents knows the
    head facts closed-book (accuracy >= 0.9, where its untrained self reads about chance, 1 / 4). Its answers
    are its p(value | BOS, entity, relation): the number `logprob` gives the statement given its first two."""
    from collapse.config import TrainConfig
    from collapse.families import TransformerConfig
    from collapse.families.transformer import TransformerFamily

    cfg = FactsConfig(vocab_size=48, n_states=2, n_entities=16, n_relations=2, n_values=4, entity_zipf=1.2,
                      fact_rate=0.4, n_train=512, n_valid=16, n_test=16, seq_len=16)
    human = load_human(cfg, 0, 1)
    world = human.facts
    buckets_F = knowledge.fact_buckets(world, 0.5, 0.1)
    fam = TransformerFamily(TransformerConfig(d_model=64, n_layers=2, n_heads=4, d_ff=128, context=16), 48)
    init = fam.init(jax.random.split(jax.random.key(0), 1))
    train = TrainConfig(batch_size=32, tokens=200 * 32 * 16, lr=3e-3, log_every=100)
    params, _ = fam.fit(init, human.train[None], [np.random.default_rng(0)], train)
    prompts_RFP = world.prompts()[None]
    before = knowledge.closed_book(world, fam.next_token_logprobs(init, prompts_RFP)[0], buckets_F)
    lp_RFV = fam.next_token_logprobs(params, prompts_RFP)
    after = knowledge.closed_book(world, lp_RFV[0], buckets_F)
    assert before["closed_book_acc_head"] <= 0.5 and after["closed_book_acc_head"] >= 0.9, (before, after)
    assert lp_RFV.shape == (1, world.n_facts, 48)
    np.testing.assert_allclose(np.exp(lp_RFV).sum(axis=2), 1.0, rtol=1e-5)
    value_RF1 = world.true_value_token_EL().reshape(1, -1, 1)
    np.testing.assert_allclose(np.take_along_axis(lp_RFV, value_RF1, axis=2)[..., 0],
                               fam.logprob(params, np.concatenate([prompts_RFP, value_RF1], axis=2), skip=2),
                               rtol=1e-4, atol=1e-5)
