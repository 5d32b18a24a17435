"""All metrics of one generation, and of the human data: `{name: value}` per replicate (each defined in
docs/metrics.md), plus the per-sequence and per-type arrays the report draws its histograms and
rank-frequency curves from. Model passes go through the family; everything else is a pure function of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.config import MetricsConfig
from collapse.metrics import diversity, perplexity, tails


@dataclass(frozen=True)
class Reference:
    """What every generation is compared with, computed once from the human data."""

    train_counts_V: np.ndarray  # token counts of the human train split: the corpus reference
    test_counts_V: np.ndarray  # of the human test split: the reference for a model's predicted mass there
    buckets_V: np.ndarray  # head / torso / tail by human train frequency
    true_V: np.ndarray | None = None  # grammar: the exact unigram of length-T sequences
    true_buckets_V: np.ndarray | None = None  # head / torso / tail by true probability

    def frames(self) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        """(metric-name suffix, corpus reference, buckets, model reference) per reference: human, then truth."""
        out = [("", self.train_counts_V, self.buckets_V, self.test_counts_V)]
        if self.true_V is not None:
            out.append(("_true", self.true_V, self.true_buckets_V, self.true_V))
        return out


def reference(human, cfg: MetricsConfig) -> Reference:
    V = human.vocab_size
    train_V = np.bincount(human.train.ravel(), minlength=V)
    test_V = np.bincount(human.test.ravel(), minlength=V)
    ref = Reference(train_V, test_V, tails.buckets(train_V, cfg.head_mass, cfg.tail_mass))
    if human.truth is None:
        return ref
    from collapse.data import grammar

    true_V = grammar.unigram(human.truth, human.train.shape[1])
    return Reference(train_V, test_V, ref.buckets_V, true_V, tails.buckets(true_V, cfg.head_mass, cfg.tail_mass))


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

    counts_V = np.bincount(np.asarray(tokens_NT).ravel(), minlength=V)
    for suffix, corpus_ref_V, buckets_V, _ in ref.frames():
        m.update(tails.mass_ratios(counts_V, corpus_ref_V, buckets_V, suffix))
        m.update(tails.survival(counts_V, corpus_ref_V, buckets_V, suffix))
        m[f"kl_unigram{suffix}"] = tails.kl_unigram(corpus_ref_V, counts_V, cfg.unigram_alpha)
    m["zipf_exponent"] = tails.zipf_exponent(counts_V)
    return m, counts_V


def true_logprob(truth, samples_NT: np.ndarray, prompts_NP: np.ndarray | None) -> np.ndarray:
    """Exact log p_true of each sample `[N]` (float64), conditional on its prompt in continuation mode."""
    from collapse.data import grammar

    if prompts_NP is None or prompts_NP.shape[1] == 0:
        return np.asarray(grammar.log_prob(truth, samples_NT), np.float64)
    joint = np.asarray(grammar.log_prob(truth, np.concatenate([prompts_NP, samples_NT], axis=1)), np.float64)
    return joint - np.asarray(grammar.log_prob(truth, prompts_NP), np.float64)


def generation_metrics(cfg: MetricsConfig, family, params_R, params0_R, human, ref: Reference,
                       samples: list[np.ndarray], prompts: list[np.ndarray] | None,
                       rngs: list[np.random.Generator]) -> tuple[list[dict[str, float]], list[dict[str, np.ndarray]]]:
    """Metrics of every replicate's model k (`params_R`) and synthetic corpus (`samples[r]`), the samples also
    scored by the same replicate's generation-0 model (`params0_R`); and per replicate the arrays to keep:
    per-sequence perplexities `ppl_gen0`, `ppl_self` `[N]` and `ppl_test` `[N_test]` (float32), the corpus'
    `token_counts` `[V]`, and for the grammar the exact `true_logprob` `[N]` of each sample (float32)."""
    R, (n_test, T) = len(samples), human.test.shape
    test_RNT = np.broadcast_to(human.test, (R, n_test, T))
    test_lp_RN = family.logprob(params_R, test_RNT)
    mass_RV = family.next_token_mass(params_R, test_RNT)
    scored_RNT, P = np.stack(samples), 0
    if prompts is not None:  # continuation mode: score each continuation given its prompt
        P = prompts[0].shape[1]
        scored_RNT = np.concatenate([np.stack(prompts), scored_RNT], axis=2)
    self_lp_RN = family.logprob(params_R, scored_RNT, skip=P)
    gen0_lp_RN = self_lp_RN if params0_R is params_R else family.logprob(params0_R, scored_RNT, skip=P)
    true_test_N = None
    if human.truth is not None:
        from collapse.data import grammar

        true_test_N = np.asarray(grammar.log_prob(human.truth, human.test))

    values, arrays = [], []
    for r, samples_NT in enumerate(samples):
        m = {"ppl_human_test": perplexity.perplexity(test_lp_RN[r], T)}
        a = {name: perplexity.sequence_perplexity(lp_N, T).astype(np.float32)
             for name, lp_N in (("ppl_gen0", gen0_lp_RN[r]), ("ppl_self", self_lp_RN[r]), ("ppl_test", test_lp_RN[r]))}
        if true_test_N is not None:
            true_N = true_logprob(human.truth, samples_NT, None if prompts is None else prompts[r])
            m["kl_true"] = perplexity.kl_true_to_model(true_test_N, test_lp_RN[r], T)
            m["true_nll_samples"] = perplexity.nll_per_token(true_N, T)
            a["true_logprob"] = true_N.astype(np.float32)
        m.update(perplexity.perplexity_summary(gen0_lp_RN[r], T, "ppl_gen0"))
        m["ppl_self"] = perplexity.perplexity(self_lp_RN[r], T)
        m["ppl_self_ratio"] = m["ppl_self"] / m["ppl_gen0"]
        corpus, a["token_counts"] = corpus_metrics(cfg, human, ref, samples_NT, rngs[r])
        m.update(corpus)
        for suffix, _, buckets_V, model_ref_V in ref.frames():
            m.update(tails.mass_ratios(mass_RV[r], model_ref_V, buckets_V, f"_model{suffix}"))
        values.append(m)
        arrays.append(a)
    return values, arrays


def human_reference(cfg: MetricsConfig, human, ref: Reference, rng: np.random.Generator) -> dict[str, float]:
    """The same metrics for the human data: the train split as the "samples", and, for the grammar, the
    true language as the "model" (so `kl_true` is 0 and `ppl_human_test` is the truth's own perplexity).
    Metrics that need a trained model (gen-0 or self perplexity, a model's predicted mass) have no human value."""
    train_NT, T = human.train, human.train.shape[1]
    ref_row = {}
    if human.truth is not None:
        from collapse.data import grammar

        ref_row["ppl_human_test"] = perplexity.perplexity(np.asarray(grammar.log_prob(human.truth, human.test)), T)
        ref_row["kl_true"] = 0.0
        ref_row["true_nll_samples"] = perplexity.nll_per_token(true_logprob(human.truth, train_NT, None), T)
    ref_row.update(corpus_metrics(cfg, human, ref, train_NT, rng)[0])
    return ref_row
