"""All metrics of one generation, and of the human data: `{name: value}` per replicate (each defined in
docs/metrics.md), plus the per-sequence and per-type arrays the report draws its histograms and
rank-frequency curves from. Model passes go through the family; everything else is a pure function of arrays.

Shape suffixes: the package's (collapse/__init__.py), and for `data=facts` F facts and W value tokens
(`collapse.metrics.knowledge`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from collapse.config import MetricsConfig
from collapse.metrics import diversity, ecosystem, knowledge, perplexity, tails  # noqa: F401  (ecosystem: its family)
from collapse.metrics.families import Family, declare

declare(Family("teacher", "Student - teacher gap", 4, ("teacher_gap_*",)))
declare(Family("healing", "Recovery by healing", 6, ("recovery_*",), prefixes=("recovery_",)))
declare(Family("watermark", "Watermark evidence", 9, ("watermark_*",)))  # collapse.watermark.evidence (JAX)


@dataclass(frozen=True)
class Reference:
    """What every generation is compared with, computed once from the human data at the positions the
    metrics score (`first`..T-1: all of them, or in continuation mode the continued part).

    The human frame's buckets come from the valid split and its reference counts from the test split: two
    samples independent of each other and of any corpus scored against them (the train split included), so
    a corpus drawn from the human distribution reads 1 in expectation. Cutting buckets and measuring mass on
    one sample would not: types that look rare in a sample are, on average, ones that came out under their
    rate there (regression to the mean), which biases the tail ratio of every other sample upward."""

    counts_V: np.ndarray  # test split token counts: the human frame's reference mass
    buckets_V: np.ndarray  # head / torso / tail by valid split frequency
    first: int = 0  # scored positions first..T-1
    true_V: np.ndarray | None = None  # grammar: the exact unigram of those positions
    true_buckets_V: np.ndarray | None = None  # head / torso / tail by true probability

    def frames(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(metric-name suffix, reference mass, buckets) per frame: human, then truth."""
        out = [("", self.counts_V, self.buckets_V)]
        if self.true_V is not None:
            out.append(("_true", self.true_V, self.true_buckets_V))
        return out


def token_counts(tokens_NT: np.ndarray, vocab_size: int) -> np.ndarray:
    return np.bincount(np.asarray(tokens_NT).ravel(), minlength=vocab_size)


def reference(human, cfg: MetricsConfig, first: int = 0) -> Reference:
    V, T = human.vocab_size, human.test.shape[1]
    valid_V = token_counts(human.valid[:, first:], V)
    ref = Reference(token_counts(human.test[:, first:], V), tails.buckets(valid_V, cfg.head_mass, cfg.tail_mass),
                    first)
    if human.truth is None:
        return ref
    from collapse.data import grammar

    true_V = grammar.unigram(human.truth, T, first)
    return replace(ref, true_V=true_V, true_buckets_V=tails.buckets(true_V, cfg.head_mass, cfg.tail_mass))


def _subset(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """A uniform random subset of min(size, n) of the rows 0..n-1, in order."""
    return np.sort(rng.choice(n, min(size, n), replace=False))


def _decode(human, tokens_NT: np.ndarray) -> list[str]:
    return [human.tokenizer.decode(row) for row in tokens_NT]


def corpus_bytes(human, tokens_NT: np.ndarray) -> bytes:
    """The corpus as bytes for `compression_ratio`: its decoded UTF-8 text, one sequence a line; the grammar
    (no text) as fixed-width token ids (`diversity.token_bytes`)."""
    if human.tokenizer is None:
        return diversity.token_bytes(tokens_NT, human.vocab_size)
    return "\n".join(_decode(human, tokens_NT)).encode()


def corpus_metrics(cfg: MetricsConfig, human, ref: Reference, tokens_NT: np.ndarray,
                   rng: np.random.Generator) -> tuple[dict[str, float], np.ndarray]:
    """Diversity and tail metrics of a corpus `[N, T]`, and its token counts `[V]`. `rng` draws the subsets."""
    V, N = human.vocab_size, len(tokens_NT)
    m = {f"distinct_{n}": diversity.distinct_n(tokens_NT, n, V) for n in range(1, 5)}
    m["unique_n_fixed"] = diversity.unique_n_fixed(tokens_NT, V, cfg.ngram_sample, rng)
    m["self_bleu4"] = diversity.self_bleu(tokens_NT[_subset(rng, N, cfg.self_bleu_subset)], V)
    m["unigram_entropy"] = diversity.ngram_entropy_bits(tokens_NT, 1, V)
    m["bigram_entropy"] = diversity.ngram_entropy_bits(tokens_NT, 2, V)
    m["compression_ratio"] = diversity.compression_ratio(corpus_bytes(human, tokens_NT))
    m[f"rep_{cfg.rep_n}"] = diversity.rep_n(tokens_NT, cfg.rep_n, V)
    m["dup_frac"] = diversity.duplicate_fraction(tokens_NT)
    if cfg.semantic:
        from collapse.metrics import semantic

        emb_ND = semantic.embed(_decode(human, tokens_NT[_subset(rng, N, cfg.semantic_subset)]))
        m["semantic_distance"] = semantic.mean_cosine_distance(emb_ND)
        m["vendi"] = semantic.vendi_score(emb_ND)

    counts_V = token_counts(tokens_NT, V)
    for suffix, ref_V, buckets_V in ref.frames():
        m.update(tails.mass_ratios(counts_V, ref_V, buckets_V, suffix))
        m.update(tails.survival(counts_V, ref_V, buckets_V, suffix))
        m[f"kl_unigram{suffix}"] = tails.kl_unigram(ref_V, counts_V, cfg.unigram_alpha)
    m["zipf_exponent"] = tails.zipf_exponent(counts_V)
    return m, counts_V


def generation_metrics(cfg: MetricsConfig, family, params_R, params0_R, humans: list, refs: list[Reference],
                       samples: list[np.ndarray], rngs: list[np.random.Generator], family0=None, previous=None
                       ) -> tuple[list[dict[str, float]], list[dict[str, np.ndarray]]]:
    """Metrics of every replicate's model k (`params_R`) and synthetic corpus (`samples[r]` `[N, T]`), against
    that replicate's human data and references (`humans[r]`, `refs[r]`), the samples also scored by the same
    replicate's generation-0 model (`params0_R`, of `family0`: the family of generation 0's model, when a
    `model_schedule` gives it another size; default `family`); and per replicate the arrays to keep: per-sequence
    perplexities `ppl_gen0`, `ppl_self` `[N]` and `ppl_test` `[N_test]` (float32), the corpus' `token_counts`
    `[V]`, for the grammar the exact `true_logprob` `[N]` of each sample (float32), and for `data=facts` the
    knowledge metrics, the corpus' `fact_counts` `[F, W]` and the model's `closed_book_prob` `[F]`
    (`collapse.metrics.knowledge`); `previous(r, name)`, where given, reads the previous generation's array
    `name` of replicate r (error reinforcement).

    Everything about the samples, and every reference, is taken at positions `first`..T-1 (`refs[r].first`):
    in continuation mode a sample is its human prompt followed by the model's continuation, and only the
    continuation is scored (given its prompt)."""
    T, first, truth = humans[0].test.shape[1], refs[0].first, humans[0].truth
    n = T - first  # scored tokens per sequence
    test_RNT = np.stack([h.test for h in humans])
    test_lp_RN = family.logprob(params_R, test_RNT)
    mass_RV = family.next_token_mass(params_R, test_RNT, first=first)
    samples_RNT = np.stack(samples)
    self_lp_RN = family.logprob(params_R, samples_RNT, skip=first)
    gen0_lp_RN = self_lp_RN if params0_R is params_R else (family0 or family).logprob(params0_R, samples_RNT,
                                                                                        skip=first)
    if truth is not None:  # KL(true || model) of the scored positions given the ones before
        from collapse.data.grammar import true_logprob  # JAX: where there is a truth, a study runs

        test_cond_lp_RN = test_lp_RN if first == 0 else family.logprob(params_R, test_RNT, skip=first)
    world = humans[0].facts
    if world is not None:  # the closed-book answers: the next-token distribution after "entity relation"
        closed_RFV = family.next_token_logprobs(params_R, np.broadcast_to(world.prompts(), (len(humans),
                                                                                              world.n_facts, 2)))

    values, arrays = [], []
    for r, (samples_NT, human, ref) in enumerate(zip(samples, humans, refs)):
        m = {"ppl_human_test": perplexity.perplexity(test_lp_RN[r], T)}
        a = {name: perplexity.sequence_perplexity(lp_N, length).astype(np.float32)
             for name, lp_N, length in (("ppl_gen0", gen0_lp_RN[r], n), ("ppl_self", self_lp_RN[r], n),
                                        ("ppl_test", test_lp_RN[r], T))}
        if truth is not None:
            true_N = true_logprob(truth, samples_NT, first)
            m["kl_true"] = perplexity.kl_true_to_model(true_logprob(truth, human.test, first), test_cond_lp_RN[r], n)
            m["true_nll_samples"] = perplexity.nll_per_token(true_N, n)
            a["true_logprob"] = true_N.astype(np.float32)
        m.update(perplexity.perplexity_summary(gen0_lp_RN[r], n, "ppl_gen0"))
        m["ppl_self"] = perplexity.perplexity(self_lp_RN[r], n)
        m["ppl_self_ratio"] = m["ppl_self"] / m["ppl_gen0"]
        corpus, a["token_counts"] = corpus_metrics(cfg, human, ref, samples_NT[:, first:], rngs[r])
        m.update(corpus)
        for suffix, ref_V, buckets_V in ref.frames():
            m.update(tails.mass_ratios(mass_RV[r], ref_V, buckets_V, f"_model{suffix}"))
        if world is not None:
            a.update(knowledge_metrics(cfg, world, m, samples_NT[:, first:], closed_RFV[r],
                                       previous(r, "fact_counts") if previous else None))
        values.append(m)
        arrays.append(a)
    return values, arrays


def knowledge_metrics(cfg: MetricsConfig, world, m: dict[str, float], tokens_NT: np.ndarray,
                      closed_book_FV: np.ndarray, before_FW: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Adds to `m` the knowledge metrics of a corpus (its scored positions `[N, T]`) and of a model's closed-book
    answers `[F, V]` (or the truth's); with the previous generation's statements `before_FW`, error
    reinforcement. Returns the arrays to keep: the corpus' statement counts `fact_counts` `[F, W]` and each
    fact's `closed_book_prob` `[F]` (float32)."""
    buckets_F = knowledge.fact_buckets(world, cfg.head_mass, cfg.tail_mass)
    counts_FW = knowledge.fact_value_counts(world, tokens_NT)
    m.update(knowledge.closed_book(world, closed_book_FV, buckets_F))
    m.update(knowledge.sample_metrics(world, counts_FW, buckets_F, tokens_NT.size))
    if before_FW is not None:
        m.update(knowledge.error_reinforcement(world, before_FW, counts_FW))
    return {"fact_counts": counts_FW, "closed_book_prob": knowledge.true_value_prob(world, closed_book_FV)}


GAP_METRICS = ("kl_true", "ppl_human_test")  # the student - teacher gaps, where the metric exists


def teacher_gaps(values: list[dict[str, float]], teacher_rows: list[dict]) -> list[dict[str, float]]:
    """Per replicate `teacher_gap_<m>` = m(student) - m(teacher) for the metrics `GAP_METRICS` (the student's
    `values[r]`, the teacher generation's metric rows): below 0 the student is closer to the truth (or to
    human text) than the model that taught it. Replicate r's student is taught by replicate r's teacher, so
    the gap is a paired difference."""
    teacher = {(row["replicate"], row["metric"]): row["value"] for row in teacher_rows}
    return [{f"teacher_gap_{m}": v[m] - teacher[(r, m)] for m in GAP_METRICS if m in v and (r, m) in teacher}
            for r, v in enumerate(values)]


RECOVERY_METRICS = ("kl_true", "ppl_human_test", "distinct_2", "self_bleu4", "tail_mass_ratio",
                    "survival_tail_true")  # one or two of each family's headline metrics


def recoveries(values: list[dict[str, float]], start_rows: list[dict], collapsed_rows: list[dict]
               ) -> list[dict[str, float]]:
    """Per replicate `recovery_<m>` = (m(collapsed) - m(healed)) / (m(collapsed) - m(generation 0)) for the metrics
    `RECOVERY_METRICS` (a healing generation's `values[r]`; the rows of generation 0 and of the last collapsed
    generation, `regime.heal_after`): 1 undoes the collapse, 0 undoes none of it, below 0 it went on."""
    start, collapsed = ({(row["replicate"], row["metric"]): row["value"] for row in rows}
                        for rows in (start_rows, collapsed_rows))
    return [{f"recovery_{m}": (collapsed[(r, m)] - v[m]) / (collapsed[(r, m)] - start[(r, m)])
             for m in RECOVERY_METRICS if m in v and (r, m) in start and collapsed[(r, m)] != start[(r, m)]}
            for r, v in enumerate(values)]


def human_reference(cfg: MetricsConfig, human, ref: Reference, rng: np.random.Generator) -> dict[str, float]:
    """The same metrics for the human data: the train split (at the scored positions) as the "samples", and,
    for the grammar, the true language as the "model" (so `kl_true` is 0, `ppl_human_test` is the truth's
    own perplexity and on `data=facts` the closed-book metrics are the truth's). The train split is independent
    of the references, so its ratios and survival are what a perfect generator reads, sampling noise included.
    Metrics that need a trained model (gen-0 or self perplexity, a model's predicted mass) have no human value."""
    train_NT, T, first = human.train, human.train.shape[1], ref.first
    ref_row = {}
    if human.truth is not None:
        from collapse.data import grammar

        ref_row["ppl_human_test"] = perplexity.perplexity(np.asarray(grammar.log_prob(human.truth, human.test)), T)
        ref_row["kl_true"] = 0.0
        ref_row["true_nll_samples"] = perplexity.nll_per_token(grammar.true_logprob(human.truth, train_NT, first),
                                                               T - first)
    ref_row.update(corpus_metrics(cfg, human, ref, train_NT[:, first:], rng)[0])
    if human.facts is not None:  # the truth answers closed-book; the train split's statements
        knowledge_metrics(cfg, human.facts, ref_row, train_NT[:, first:],
                          knowledge.truth_closed_book(human.facts, human.truth))
    return ref_row
