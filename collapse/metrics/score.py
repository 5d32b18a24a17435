"""All metrics of one generation: `{name: value}` per replicate, from the models, samples and human data."""

from __future__ import annotations

import numpy as np

from collapse.metrics import diversity, perplexity


def _true_nll(truth, samples_NT: np.ndarray, prompts_NP: np.ndarray | None) -> float:
    """Mean true NLL per token of the samples, conditional on their prompts in continuation mode."""
    from collapse.data import grammar

    T = samples_NT.shape[1]
    if prompts_NP is None or prompts_NP.shape[1] == 0:
        return perplexity.nll_per_token(np.asarray(grammar.log_prob(truth, samples_NT)), T)
    joint = np.asarray(grammar.log_prob(truth, np.concatenate([prompts_NP, samples_NT], axis=1)), np.float64)
    prefix = np.asarray(grammar.log_prob(truth, prompts_NP), np.float64)
    return perplexity.nll_per_token(joint - prefix, T)


def generation_metrics(family, params_R, human, samples: list[np.ndarray],
                       prompts: list[np.ndarray] | None = None) -> list[dict[str, float]]:
    """Metrics of every replicate's model (`params_R`) and synthetic corpus (`samples[r]`)."""
    R, (n_test, T) = len(samples), human.test.shape
    test_lp_RN = family.logprob(params_R, np.broadcast_to(human.test, (R, n_test, T)))
    true_test_N = None
    if human.truth is not None:
        from collapse.data import grammar

        true_test_N = np.asarray(grammar.log_prob(human.truth, human.test))
    out = []
    for r, samples_NT in enumerate(samples):
        m = {"ppl_human_test": perplexity.perplexity(test_lp_RN[r], T)}
        if true_test_N is not None:
            m["kl_true"] = perplexity.kl_true_to_model(true_test_N, test_lp_RN[r], T)
            m["true_nll_samples"] = _true_nll(human.truth, samples_NT, None if prompts is None else prompts[r])
        m["distinct_1"] = diversity.distinct_n(samples_NT, 1, human.vocab_size)
        m["distinct_2"] = diversity.distinct_n(samples_NT, 2, human.vocab_size)
        m["unigram_entropy"] = diversity.unigram_entropy_bits(samples_NT, human.vocab_size)
        out.append(m)
    return out


def human_reference(human) -> dict[str, float]:
    """The same metrics for the human data: the train split as the "samples", and, for the grammar, the
    true language as the "model" (so `kl_true` is 0 and `ppl_human_test` is the truth's own perplexity)."""
    train_NT, T = human.train, human.train.shape[1]
    ref = {}
    if human.truth is not None:
        from collapse.data import grammar

        ref["ppl_human_test"] = perplexity.perplexity(np.asarray(grammar.log_prob(human.truth, human.test)), T)
        ref["kl_true"] = 0.0
        ref["true_nll_samples"] = _true_nll(human.truth, train_NT, None)
    ref["distinct_1"] = diversity.distinct_n(train_NT, 1, human.vocab_size)
    ref["distinct_2"] = diversity.distinct_n(train_NT, 2, human.vocab_size)
    ref["unigram_entropy"] = diversity.unigram_entropy_bits(train_NT, human.vocab_size)
    return ref
