"""Knowledge and hallucination on `data=facts` (docs/metrics.md#knowledge-and-hallucination): pure functions of
token arrays, a model's next-token log-probabilities and the world (`collapse.data.facts.World`).

A statement in a corpus is a position pattern of token ids: an entity token, a relation token, then any value
token (of any relation; a value of another relation is a false statement). Facts are f = e L + l; each is in
the frequency bucket (head / torso / tail) of its entity, cut by the entities' true statement probabilities
as `tails.buckets` cuts types (`metrics.head_mass`, `metrics.tail_mass`).

Shape suffixes: the package's (collapse/__init__.py), and E entities, F facts (E L), W value tokens (L K), L
relations, K values of a relation.
"""

from __future__ import annotations

import numpy as np

from collapse.metrics import tails
from collapse.metrics.families import Family, declare

declare(Family("knowledge", "Knowledge and hallucination", 7,
               ("closed_book_*", "hallucination_rate*", "factual_precision*", "fact_*", "error_repeat*"),
               headline=("closed_book_acc_tail", "hallucination_rate")))

BUCKETS = tails.BUCKETS


def fact_buckets(world, head_mass: float, tail_mass: float) -> np.ndarray:
    """The bucket of every fact `[F]` (0 head, 1 torso, 2 tail): its entity's, by the entities' true
    probabilities of being stated."""
    return np.repeat(tails.buckets(world.entity_p_E, head_mass, tail_mass), world.n_relations)


def true_value_F(world) -> np.ndarray:
    """Each fact's true value as a value-token index 0..W-1 `[F]`."""
    return (world.true_value_token_EL() - world.first_value).ravel()


def fact_value_counts(world, tokens_NT: np.ndarray) -> np.ndarray:
    """How often the corpus states each fact with each value `[F, W]` (int32): the statements (entity,
    relation, value token) that lie wholly inside the rows of `tokens_NT`."""
    x_NT = np.asarray(tokens_NT)
    e_NT, l_NT, w_NT = x_NT[:, :-2], x_NT[:, 1:-1], x_NT[:, 2:]
    found = ((e_NT >= world.first_entity) & (e_NT < world.first_relation)
             & (l_NT >= world.first_relation) & (l_NT < world.first_value)
             & (w_NT >= world.first_value) & (w_NT < world.vocab_size))
    fact = (e_NT[found] - world.first_entity) * world.n_relations + (l_NT[found] - world.first_relation)
    index = fact.astype(np.int64) * world.n_value_tokens + (w_NT[found] - world.first_value)
    counts = np.bincount(index, minlength=world.n_facts * world.n_value_tokens)
    return counts.reshape(world.n_facts, world.n_value_tokens).astype(np.int32)


def _by_bucket(name: str, value, buckets_F: np.ndarray) -> dict[str, float]:
    """`name` over all facts and `name_<bucket>` over each bucket's, `value(selected facts)` a float."""
    out = {name: value(np.ones(len(buckets_F), bool))}
    for b, bucket in enumerate(BUCKETS):
        out[f"{name}_{bucket}"] = value(buckets_F == b)
    return out


def _share(num_F: np.ndarray, den_F: np.ndarray):
    """sum(num) / sum(den) over the selected facts; nan where the denominator is 0 (nothing to count)."""
    def value(sel_F):
        den = den_F[sel_F].sum()
        return float(num_F[sel_F].sum() / den) if den else float("nan")
    return value


def _mean(x_F: np.ndarray):
    return lambda sel_F: float(x_F[sel_F].mean()) if sel_F.any() else float("nan")


def sample_metrics(world, counts_FW: np.ndarray, buckets_F: np.ndarray, n_tokens: int) -> dict[str, float]:
    """The statements of a corpus of `n_tokens` scored tokens (`fact_value_counts`): `hallucination_rate`
    (false / all statements), `factual_precision` (true / all), `fact_coverage` (the share of the facts stated
    truly at least once), each overall and per bucket, and `fact_statement_rate` (statements per token)."""
    counts_FW = np.asarray(counts_FW, np.int64)
    stated_F = counts_FW.sum(axis=1)
    true_F = counts_FW[np.arange(len(counts_FW)), true_value_F(world)]
    m = {"fact_statement_rate": float(stated_F.sum() / n_tokens)}
    m.update(_by_bucket("hallucination_rate", _share(stated_F - true_F, stated_F), buckets_F))
    m.update(_by_bucket("factual_precision", _share(true_F, stated_F), buckets_F))
    m.update(_by_bucket("fact_coverage", _mean((true_F > 0).astype(np.float64)), buckets_F))
    return m


def true_value_prob(world, logprob_FV: np.ndarray) -> np.ndarray:
    """Each fact's closed-book probability of its true value `[F]` (float32) from next-token log-probabilities
    after its prompt `[F, V]`."""
    truth_F = world.true_value_token_EL().ravel()
    return np.exp(np.asarray(logprob_FV, np.float64)[np.arange(len(truth_F)), truth_F]).astype(np.float32)


def closed_book(world, logprob_FV: np.ndarray, buckets_F: np.ndarray) -> dict[str, float]:
    """Closed-book knowledge from a model's next-token log-probabilities after each fact's prompt "entity
    relation" `[F, V]`: `closed_book_prob` (the mean probability of the true value) and `closed_book_acc`
    (the share of facts whose most probable next token, over the whole vocabulary, is the true value), each
    overall and per bucket."""
    logprob_FV = np.asarray(logprob_FV, np.float64)
    truth_F = world.true_value_token_EL().ravel()
    p_F = true_value_prob(world, logprob_FV).astype(np.float64)
    acc_F = (np.argmax(logprob_FV, axis=1) == truth_F).astype(np.float64)
    return {**_by_bucket("closed_book_prob", _mean(p_F), buckets_F),
            **_by_bucket("closed_book_acc", _mean(acc_F), buckets_F)}


def error_reinforcement(world, before_FW: np.ndarray, after_FW: np.ndarray) -> dict[str, float]:
    """Whether the false statements of one generation (`before_FW`) come back in the next (`after_FW`):
    `error_repeat`, the share of the distinct false (fact, value) pairs stated before that are stated again
    after, and `error_repeat_chance`, its expectation had the later generation drawn each of its false
    statements about a fact from its own false values of that fact's relation (pooled over the relation's
    facts, the fact's true value left out), i.e. remembering that it errs and how, but not which error it made.
    nan where the earlier generation stated nothing false."""
    before_FW, after_FW = np.asarray(before_FW, np.int64), np.asarray(after_FW, np.int64)
    F, W = after_FW.shape
    truth_F = true_value_F(world)
    is_true_FW = np.zeros((F, W), bool)
    is_true_FW[np.arange(F), truth_F] = True
    false_after_FW = np.where(is_true_FW, 0, after_FW)
    relation_F = np.arange(F) % world.n_relations
    pooled_LW = np.zeros((world.n_relations, W))
    np.add.at(pooled_LW, relation_F, false_after_FW)
    q_FW = pooled_LW[relation_F]
    q_FW[is_true_FW] = 0.0
    total_F = q_FW.sum(axis=1, keepdims=True)
    q_FW = np.divide(q_FW, total_F, out=np.zeros_like(q_FW), where=total_F > 0)
    n_F = false_after_FW.sum(axis=1)
    f, w = np.nonzero((before_FW > 0) & ~is_true_FW)
    if not len(f):
        return {"error_repeat": float("nan"), "error_repeat_chance": float("nan")}
    chance = 1.0 - (1.0 - q_FW[f, w]) ** n_F[f]
    return {"error_repeat": float((after_FW[f, w] > 0).mean()), "error_repeat_chance": float(chance.mean())}


def truth_closed_book(world, truth) -> np.ndarray:
    """The truth's own next-token log-probabilities after every fact's prompt `[F, V]` (float64): the rows of
    its fact states, the automaton's last F (a prompt "entity relation" from the start state reaches them)."""
    return np.asarray(truth.log_emit_SV, np.float64)[-world.n_facts:]
