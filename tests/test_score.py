"""One generation's metrics, with a family of fixed unigram models whose every score is known in closed form."""

import math

import jax
import numpy as np
import pytest

from collapse.config import MetricsConfig
from collapse.data import grammar
from collapse.data.human import HumanData, load_human
from collapse.data.tokenizer import ByteTokenizer
from collapse.metrics import score, tails
from tests.helpers import assert_mean, tiny_config

CFG = MetricsConfig(ngram_sample=500, self_bleu_subset=16)


class UnigramFamily:
    """Parameters `[R, V]` are log-probabilities that every position predicts, whatever came before."""

    def logprob(self, params_R, tokens_RNT, batch=256, skip=0):
        return np.stack([lp_V[t_NT[:, skip:]].sum(axis=1) for lp_V, t_NT in zip(params_R, tokens_RNT)])

    def next_token_mass(self, params_R, tokens_RNT, batch=256, first=0):
        return np.exp(params_R)


@pytest.fixture(scope="module")
def human():
    return load_human(tiny_config().data, 0, 2)


def unigram_params(V, R, seed):
    logits = np.random.default_rng(seed).normal(size=(R, V))
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def test_generation_metrics_in_closed_form(human):
    """Every replicate is scored against its own human data (the grammar's replicates each draw theirs)."""
    V, T, R = human.vocab_size, human.train.shape[1], 2
    params, params0 = unigram_params(V, R, 1), unigram_params(V, R, 2)
    rng = np.random.default_rng(3)
    samples = [rng.integers(0, V, (40, T)) for _ in range(R)]
    humans = [human, load_human(tiny_config().data, 0, 2, replicate=1)]
    assert not np.array_equal(humans[0].test, humans[1].test)
    refs = [score.reference(h, CFG) for h in humans]
    values, arrays = score.generation_metrics(CFG, UnigramFamily(), params, params0, humans, refs, samples,
                                              [np.random.default_rng(r) for r in range(R)])
    for r in range(R):
        m, a, human, ref = values[r], arrays[r], humans[r], refs[r]
        assert m["ppl_human_test"] == pytest.approx(math.exp(-params[r][human.test].mean()))
        assert m["ppl_gen0"] == pytest.approx(math.exp(-params0[r][samples[r]].mean()))
        assert m["ppl_self"] == pytest.approx(math.exp(-params[r][samples[r]].mean()))
        assert m["ppl_self_ratio"] == pytest.approx(m["ppl_self"] / m["ppl_gen0"])
        # the stored per-sequence values: their geometric mean is the corpus value, their mean the _mean one
        np.testing.assert_allclose(a["ppl_gen0"], np.exp(-params0[r][samples[r]].mean(axis=1)), rtol=1e-6)
        assert a["ppl_gen0"].dtype == np.float32 and a["ppl_test"].shape == (len(human.test),)
        assert math.log(m["ppl_gen0"]) == pytest.approx(np.log(a["ppl_gen0"].astype(np.float64)).mean(), rel=1e-6)
        assert m["ppl_gen0_mean"] == pytest.approx(a["ppl_gen0"].mean(), rel=1e-6)
        assert m["ppl_gen0_p10"] <= m["ppl_gen0_median"] <= m["ppl_gen0_p90"] <= m["ppl_gen0_p99"]
        np.testing.assert_array_equal(a["token_counts"], np.bincount(samples[r].ravel(), minlength=V))
        # the model's predicted mass is exp(params) at every position; its reference, the test split's tokens
        expected = tails.mass_ratios(np.exp(params[r]), np.bincount(human.test.ravel(), minlength=V), ref.buckets_V)
        assert m["tail_mass_ratio_model"] == pytest.approx(expected["tail_mass_ratio"])
        true_N = np.asarray(grammar.log_prob(human.truth, samples[r]), np.float64)
        assert m["true_nll_samples"] == pytest.approx(-true_N.mean() / T)
        np.testing.assert_allclose(a["true_logprob"], true_N, rtol=1e-6)
        assert {"kl_true", "tail_mass_ratio_true", "tail_mass_ratio_model_true", "survival_tail_true",
                "self_bleu4", "unique_n_fixed", "compression_ratio", "zipf_exponent"} <= set(m)


def test_generation_zero_is_scored_once(human):
    """At generation 0 the judge is the model itself: gen-0 and self perplexity are the same numbers."""
    V, T = human.vocab_size, human.train.shape[1]
    params = unigram_params(V, 1, 4)
    samples = [np.random.default_rng(5).integers(0, V, (20, T))]
    values, _ = score.generation_metrics(CFG, UnigramFamily(), params, params, [human],
                                         [score.reference(human, CFG)], samples, [np.random.default_rng(0)])
    assert values[0]["ppl_self_ratio"] == 1.0


def test_continuations_are_scored_given_their_prompts(human):
    """In continuation mode a sample is prompt ⧺ continuation; only the continuation is scored, given its prompt,
    and every reference is taken at the continued positions."""
    V, T, P = human.vocab_size, human.train.shape[1], 4
    params, params0 = unigram_params(V, 1, 6), unigram_params(V, 1, 7)
    samples = [np.concatenate([human.train[:len(human.valid), :P], human.valid[:, P:]], axis=1)]
    ref = score.reference(human, CFG, first=P)
    values, arrays = score.generation_metrics(CFG, UnigramFamily(), params, params0, [human], [ref], samples,
                                              [np.random.default_rng(0)])
    assert values[0]["ppl_gen0"] == pytest.approx(math.exp(-params0[0][samples[0][:, P:]].mean()))
    joint = np.asarray(grammar.log_prob(human.truth, samples[0]), np.float64)
    prefix = np.asarray(grammar.log_prob(human.truth, samples[0][:, :P]), np.float64)
    np.testing.assert_allclose(arrays[0]["true_logprob"], joint - prefix, rtol=1e-5)
    assert values[0]["true_nll_samples"] == pytest.approx(-(joint - prefix).mean() / (T - P), rel=1e-6)
    np.testing.assert_array_equal(arrays[0]["token_counts"], np.bincount(samples[0][:, P:].ravel(), minlength=V))
    np.testing.assert_allclose(ref.true_V, grammar.unigram(human.truth, T, P))
    np.testing.assert_array_equal(ref.counts_V, np.bincount(human.test[:, P:].ravel(), minlength=V))


def test_human_reference_is_the_same_metrics_on_the_train_split(human):
    """The human row scores the train split against references from the valid (buckets) and test (mass)
    splits, so its ratios carry honest sampling noise instead of being 1 by construction."""
    ref = score.reference(human, CFG)
    row = score.human_reference(CFG, human, ref, np.random.default_rng(0))
    V = human.vocab_size
    buckets_V = tails.buckets(np.bincount(human.valid.ravel(), minlength=V), CFG.head_mass, CFG.tail_mass)
    train_V, test_V = (np.bincount(x.ravel(), minlength=V) for x in (human.train, human.test))
    for name, value in tails.mass_ratios(train_V, test_V, buckets_V).items():
        assert row[name] == pytest.approx(value)
    assert row["survival"] == tails.survival(train_V, test_V, buckets_V)["survival"]
    assert row["kl_true"] == 0.0 and row["tail_mass_ratio_true"] > 0
    assert "ppl_gen0" not in row and "tail_mass_ratio_model" not in row
    again = score.human_reference(CFG, human, ref, np.random.default_rng(0))
    assert again == row  # the subsets come from the generator alone


def _truth_split(g, key, sizes, T):
    """Human splits drawn from the truth `g`: train, valid, test and one more (a perfect generator's corpus)."""
    draws = [np.asarray(grammar.sample(g, jax.random.fold_in(key, i), n, T)) for i, n in enumerate(sizes)]
    return HumanData(*draws[:3], draws[0][:0], g.vocab_size, truth=g), draws[3]


def test_a_perfect_generator_reads_no_tail_drift():
    """Null test: corpora drawn from the truth, a Zipf(1.1) language over V = 4096 types, score every bucket
    mass ratio 1 and the survival of an independent human sample of the same size, within their sampling
    intervals. (With buckets and reference mass from one sample, as before, the tail ratio reads ~1.06 here.)

    Each replicate draws its own human splits and corpus, so the mean over replicates estimates the
    expectation over everything; Z = 4 standard errors of that mean (tests/helpers.py). Tokens are iid, so
    they are drawn with NumPy (fast) rather than through the grammar."""
    V, T, K = 4096, 32, 24
    p_V = np.arange(1, V + 1) ** -1.1
    p_V /= p_V.sum()
    ratios, survival_gap = [], []
    for k in range(K):
        rng = np.random.default_rng(k)
        train, valid, test, corpus = (rng.choice(V, (n, T), p=p_V) for n in (1024, 256, 512, 1024))
        ref = score.reference(HumanData(train, valid, test, train[:0], V), CFG)
        corpus, row = ({**tails.mass_ratios(c_V, ref.counts_V, ref.buckets_V),
                        **tails.survival(c_V, ref.counts_V, ref.buckets_V)}  # what corpus_metrics reports
                       for c_V in (score.token_counts(x, V) for x in (corpus, train)))
        ratios.append([corpus[f"{b}_mass_ratio"] for b in tails.BUCKETS])
        survival_gap.append([corpus[n] - row[n] for n in ("survival", "survival_head", "survival_tail")])
    for name, x in zip(tails.BUCKETS, np.array(ratios).T):
        assert_mean(x, 1.0, x.std(ddof=1), f"{name}_mass_ratio of truth-drawn corpora")
    for name, x in zip(("survival", "survival_head", "survival_tail"), np.array(survival_gap).T):
        assert_mean(x, 0.0, max(x.std(ddof=1), 1e-12), f"{name}: truth corpus minus human train split")


def test_a_perfect_continuation_generator_reads_no_drift(human):
    """Null test for continuation mode: the truth continuing human prompts scores true NLL equal to the human
    row's, tail mass ratios against the truth of 1, and its blocks (what the next generation trains on) are
    distributed as human blocks: their exact NLL per token is the block entropy."""
    g, T, P, N, K = human.truth, human.train.shape[1], 6, 2048, 16
    nll_gap, ratio_true, block_nll = [], [], []
    for k in range(K):
        key = jax.random.key(100 + k)
        h, _ = _truth_split(g, key, (N, 256, 256, 0), T)
        prompts = h.train[np.random.default_rng(k).choice(N, N), :P]
        blocks = np.concatenate([prompts, np.asarray(grammar.extend(g, jax.random.fold_in(key, 9), prompts, T - P))], 1)
        ref = score.reference(h, CFG, first=P)
        row = score.human_reference(CFG, h, ref, np.random.default_rng(k))
        values, _ = score.generation_metrics(CFG, UnigramFamily(), unigram_params(h.vocab_size, 1, k),
                                             unigram_params(h.vocab_size, 1, k + 1), [h], [ref], [blocks],
                                             [np.random.default_rng(k)])
        nll_gap.append(values[0]["true_nll_samples"] - row["true_nll_samples"])
        ratio_true.append([values[0][f"{b}_mass_ratio_true"] for b in tails.BUCKETS])
        block_nll.append(-np.asarray(grammar.log_prob(g, blocks), np.float64).mean() / T)
    assert_mean(nll_gap, 0.0, np.std(nll_gap, ddof=1), "true NLL of perfect continuations minus the human row's")
    for name, x in zip(tails.BUCKETS, np.array(ratio_true).T):
        assert_mean(x, 1.0, x.std(ddof=1), f"{name}_mass_ratio_true of perfect continuations")
    assert_mean(block_nll, grammar.block_entropy(g, T), np.std(block_nll, ddof=1), "NLL per token of the blocks")


def test_text_corpora_are_compressed_as_decoded_text():
    tokens = np.frombuffer(b"abcdxyzw", np.uint8).astype(np.int32).reshape(2, 4)
    text = HumanData(tokens, tokens, tokens, tokens[:0], 256, tokenizer=ByteTokenizer())
    assert score.corpus_bytes(text, tokens) == b"abcd\nxyzw"
    grammar_like = HumanData(tokens, tokens, tokens, tokens[:0], 256)
    assert score.corpus_bytes(grammar_like, tokens) == b"abcdxyzw"
    ref = score.reference(text, CFG)
    assert [f[0] for f in ref.frames()] == [""]  # no truth: only the human reference
