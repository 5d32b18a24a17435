"""One generation's metrics, with a family of fixed unigram models whose every score is known in closed form."""

import math

import numpy as np
import pytest

from collapse.config import MetricsConfig
from collapse.data import HumanData, grammar, load_human
from collapse.data.tokenizer import ByteTokenizer
from collapse.metrics import score, tails
from tests.helpers import tiny_config

CFG = MetricsConfig(ngram_sample=500, self_bleu_subset=16)


class UnigramFamily:
    """Parameters `[R, V]` are log-probabilities that every position predicts, whatever came before."""

    def logprob(self, params_R, tokens_RNT, batch=256, skip=0):
        return np.stack([lp_V[t_NT[:, skip:]].sum(axis=1) for lp_V, t_NT in zip(params_R, tokens_RNT)])

    def next_token_mass(self, params_R, tokens_RNT, batch=256):
        return np.exp(params_R)


@pytest.fixture(scope="module")
def human():
    return load_human(tiny_config())


def unigram_params(V, R, seed):
    logits = np.random.default_rng(seed).normal(size=(R, V))
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def test_generation_metrics_in_closed_form(human):
    V, T, R = human.vocab_size, human.train.shape[1], 2
    params, params0 = unigram_params(V, R, 1), unigram_params(V, R, 2)
    rng = np.random.default_rng(3)
    samples = [rng.integers(0, V, (40, T)) for _ in range(R)]
    ref = score.reference(human, CFG)
    values, arrays = score.generation_metrics(CFG, UnigramFamily(), params, params0, human, ref, samples, None,
                                              [np.random.default_rng(r) for r in range(R)])
    for r in range(R):
        m, a = values[r], arrays[r]
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
    values, _ = score.generation_metrics(CFG, UnigramFamily(), params, params, human, score.reference(human, CFG),
                                         samples, None, [np.random.default_rng(0)])
    assert values[0]["ppl_self_ratio"] == 1.0


def test_continuations_are_scored_given_their_prompts(human):
    V, T, P = human.vocab_size, human.train.shape[1], 4
    params, params0 = unigram_params(V, 1, 6), unigram_params(V, 1, 7)
    samples, prompts = [human.valid[:, :T]], [human.train[:len(human.valid), :P]]
    values, arrays = score.generation_metrics(CFG, UnigramFamily(), params, params0, human,
                                              score.reference(human, CFG), samples, prompts,
                                              [np.random.default_rng(0)])
    assert values[0]["ppl_gen0"] == pytest.approx(math.exp(-params0[0][samples[0]].mean()))
    joint = np.asarray(grammar.log_prob(human.truth, np.concatenate([prompts[0], samples[0]], axis=1)), np.float64)
    prefix = np.asarray(grammar.log_prob(human.truth, prompts[0]), np.float64)
    np.testing.assert_allclose(arrays[0]["true_logprob"], joint - prefix, rtol=1e-5)


def test_human_reference_is_the_same_metrics_on_the_train_split(human):
    ref = score.reference(human, CFG)
    row = score.human_reference(CFG, human, ref, np.random.default_rng(0))
    for name in ("head_mass_ratio", "torso_mass_ratio", "tail_mass_ratio", "survival", "survival_tail"):
        assert row[name] == 1.0
    assert row["kl_true"] == 0.0 and row["tail_mass_ratio_true"] > 0
    assert "ppl_gen0" not in row and "tail_mass_ratio_model" not in row
    again = score.human_reference(CFG, human, ref, np.random.default_rng(0))
    assert again == row  # the subsets come from the generator alone


def test_text_corpora_are_compressed_as_decoded_text():
    tokens = np.frombuffer(b"abcdxyzw", np.uint8).astype(np.int32).reshape(2, 4)
    text = HumanData(tokens, tokens, tokens, tokens[:0], 256, tokenizer=ByteTokenizer())
    assert score.corpus_bytes(text, tokens) == b"abcd\nxyzw"
    grammar_like = HumanData(tokens, tokens, tokens, tokens[:0], 256)
    assert score.corpus_bytes(grammar_like, tokens) == b"abcdxyzw"
    ref = score.reference(text, CFG)
    assert [f[0] for f in ref.frames()] == [""]  # no truth: only the human reference
