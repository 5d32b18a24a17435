"""Provenance: every regime's composition and synthetic depth against its documented closed form, in every
generation; the per-example lineage arrays and provenance.json of a finished study."""

import dataclasses
import json

import numpy as np
import pytest

from collapse.run import loop, study
from collapse.store import RunDir
from collapse import provenance, regimes
from collapse.config import SampleConfig
from collapse.regimes import AccumulateConfig, AccumulateSubsampleConfig, MixConfig, ReplaceConfig
from collapse.data.grammar import true_logprob
from tests.helpers import Z, assert_mean, tiny_config

N, G = 40, 8  # human train rows = samples per generation; generations


def simulate(regime, seed=0):
    """Every generation's training-set provenance and mean depth, built by the regime (no model: the samples
    are placeholders, provenance does not look at tokens)."""
    human, fresh = np.zeros((N, 2), np.int32), np.zeros((N * G, 2), np.int32)
    synthetic, sets, depths = [], [], []
    rng = np.random.default_rng(seed)
    for g in range(G):
        ts = regimes.training_set(regime, g, human, fresh, synthetic, rng)
        depths.append(provenance.mean_depths([ts.provenance], depths))
        sets.append(ts)
        synthetic.append(np.zeros((N, 2), np.int32))
    return sets, [float(d[0]) for d in depths]


def test_replace_depth_is_the_generation():
    sets, depths = simulate(ReplaceConfig())
    for g, ts in enumerate(sets):
        assert provenance.counts(ts.provenance) == ({"human": N} if g == 0 else {f"gen_{g - 1}": N})
    assert depths == list(range(G))


@pytest.mark.parametrize("fresh", [False, True])
def test_mix_depth_follows_its_recursion(fresh):
    h = 0.25
    sets, depths = simulate(MixConfig(human_fraction=h, fresh=fresh))
    expected = [0.0]
    for g in range(1, G):
        assert provenance.counts(sets[g].provenance) == {"human": N // 4, f"gen_{g - 1}": N - N // 4}
        expected.append((1 - h) * (1 + expected[-1]))
    np.testing.assert_allclose(depths, expected, rtol=1e-12)
    assert expected[-1] == pytest.approx((1 - h) / h * (1 - (1 - h) ** (G - 1)))  # the closed form, -> (1-h)/h


def test_accumulate_depth_is_a_harmonic_number():
    sets, depths = simulate(AccumulateConfig())
    for g, ts in enumerate(sets):  # all human data and every earlier generation's samples
        assert provenance.counts(ts.provenance) == {"human": N, **{f"gen_{j}": N for j in range(g)}}
    harmonic = [sum(1 / k for k in range(2, g + 2)) for g in range(G)]  # D_g = H_{g+1} - 1
    np.testing.assert_allclose(depths, harmonic, rtol=1e-12)


def test_accumulate_subsample_depth_from_its_exact_counts_and_composition_in_expectation():
    size = 30
    sets, depths = simulate(AccumulateSubsampleConfig(size=size))
    for g in range(1, G):  # exact: the counts drawn this time, each origin at 1 + its own generation's depth
        n = provenance.counts(sets[g].provenance)
        assert sum(n.values()) == size
        assert depths[g] == pytest.approx(sum(c * (1 + depths[int(o[4:])]) for o, c in n.items() if o != "human") / size)
    # in expectation: a uniform subset of the pool of N human rows and N samples of each earlier generation
    runs = [simulate(AccumulateSubsampleConfig(size=size), seed)[0][3] for seed in range(300)]
    for origin in ("human", "gen_0", "gen_2"):
        share = [provenance.counts(ts.provenance).get(origin, 0) for ts in runs]
        p = 1 / 4  # generation 3's pool: human + 3 generations, equal sizes
        sd = np.sqrt(size * p * (1 - p) * (4 * N - size) / (4 * N - 1))  # hypergeometric
        assert_mean(share, size * p, sd, f"accumulate_subsample count of {origin}")


def test_label_sources_are_hard_and_prompt_rows_follow_the_samples():
    prov = np.array([-1, 0, 1, 1, -1])
    index = np.array([7, 2, 0, 3, 9])
    np.testing.assert_array_equal(provenance.label_sources(tiny_config().train, 1, 2, prov), -1)
    assert provenance.counts(provenance.label_sources(tiny_config().train, 1, 2, prov), provenance.label_name) == {"hard": 5}
    assert [provenance.label_name(j) for j in (-1, 3)] == ["hard", "soft_gen_3"]
    prompts = {0: np.array([10, 11, 12]), 1: np.array([20, 21, 22, 23])}
    np.testing.assert_array_equal(provenance.prompt_rows(prov, index, prompts.__getitem__), [-1, 12, 20, 23, -1])


def test_origin_scores_are_geometric_means_against_the_test_split():
    """By hand: NLL per token 1, 3 (human), 2 (gen_0), 3, 5 (gen_1); the test split's 1.5, 2.5 (mean 2)."""
    prov = np.array([-1, 0, 1, 1, -1])
    nll_N, true_N = np.array([1.0, 2, 3, 5, 3]), np.array([0.5, 1, 2, 4, 1.5])
    seen_N = np.array([True, False, False, False, False])
    scores, ref = provenance.origin_scores(prov, nll_N, seen_N, true_N, np.array([1.5, 2.5]), np.array([1.0, 2.0]))
    assert ref == {"rows": 2, "ppl_gen0": pytest.approx(np.exp(2.0)), "true_nll": 1.5}
    human, gen1 = scores["human"], scores["gen_1"]
    assert human["rows"] == 2 and human["seen_by_gen0"] == 0.5 and scores["gen_0"]["seen_by_gen0"] == 0
    assert human["ppl_gen0"] == pytest.approx(np.exp(2.0)) and gen1["ppl_gen0"] == pytest.approx(np.exp(4.0))
    assert human["ppl_gen0_vs_test"] == pytest.approx(1.0) and gen1["ppl_gen0_vs_test"] == pytest.approx(np.exp(2.0))
    # Welch: variances 2/2 and 0.5/2, df = 1.25^2 / (1 + 0.0625) = 1.47 -> 1; t975(1) = 12.706
    half = 12.706204736 * np.sqrt(1.25)
    np.testing.assert_allclose(gen1["ppl_gen0_vs_test_ci95"], np.exp([2 - half, 2 + half]), rtol=1e-8)
    assert gen1["true_nll"] == 3.0 and gen1["true_nll_vs_test"] == 1.5 and human["true_nll"] == 1.0
    np.testing.assert_allclose(gen1["true_nll_vs_test_ci95"], [1.5 - 12.706204736 * np.sqrt(1.25),
                                                               1.5 + 12.706204736 * np.sqrt(1.25)], rtol=1e-8)
    assert "ppl_gen0_vs_test_ci95" in scores["gen_0"] and np.isnan(scores["gen_0"]["ppl_gen0_vs_test_ci95"]).all()


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("mix")
    cfg = tiny_config(regime=MixConfig(human_fraction=0.25), generations=3, replicates=2,
                      sample=SampleConfig(batch_size=64, mode="continuation", prompt_len=4))
    loop.run(cfg, path)
    return cfg, path


@pytest.mark.reports
def test_a_study_records_each_generations_provenance(mixed_run):
    cfg, path = mixed_run
    n, T, P = cfg.data.n_train, cfg.data.seq_len, cfg.sample.prompt_len
    depth = 0.0
    for g in range(3):
        gen = path / f"gen_{g:03d}"
        record = json.loads((gen / "provenance.json").read_text())
        manifest = json.loads((gen / "manifest.json").read_text())
        assert record["model"] == manifest["model"] == "transformer" and record["prompt_tokens"] == P
        assert record["parameters"] == manifest["parameters"] == 19232  # d_model 32, 2 layers, vocabulary 16 + BOS
        depth = 0.0 if g == 0 else 0.75 * (1 + depth)
        assert record["mean_depth"] == pytest.approx(depth, rel=1e-12)
        for r, rep in enumerate(record["replicates"]):
            origins = np.load(gen / f"rep_{r:02d}" / "train_provenance.npy")
            assert rep["by_origin"] == manifest["replicates"][r]["counts"] == provenance.counts(origins)
            assert rep["by_origin"] == ({"human": n} if g == 0 else {"human": n // 4, f"gen_{g - 1}": n - n // 4})
            assert rep["by_label_source"] == {"hard": n} and rep["mean_depth"] == pytest.approx(depth, rel=1e-12)
            # the human row behind every synthetic example's prompt is the one its sampler continued
            rows = np.load(gen / f"rep_{r:02d}" / "train_prompt_row.npy")
            index = np.load(gen / f"rep_{r:02d}" / "train_index.npy")
            if g:
                prompts = np.load(path / f"gen_{g - 1:03d}" / f"rep_{r:02d}" / "prompt_index.npy")
                np.testing.assert_array_equal(rows[origins >= 0], prompts[index[origins >= 0]])
                samples = np.load(path / f"gen_{g - 1:03d}" / f"rep_{r:02d}" / "samples.npy")
                human = np.load(path / "human" / f"rep_{r:02d}" / "train.npy")
                np.testing.assert_array_equal(samples[index[origins >= 0], :P], human[rows[origins >= 0], :P])
            assert (rows[origins < 0] == -1).all()
    # per-origin scores against the score phase's own per-sequence arrays: generation 1's synthetic rows are
    # generation 0's samples, judged by generation 0 and by the truth over the continuation
    record = json.loads((path / "gen_001" / "provenance.json").read_text())
    for r, rep in enumerate(record["replicates"]):
        origins = np.load(path / "gen_001" / f"rep_{r:02d}" / "train_provenance.npy")
        index = np.load(path / "gen_001" / f"rep_{r:02d}" / "train_index.npy")[origins == 0]
        sample_scores = path / "gen_000" / f"rep_{r:02d}"
        ppl0 = np.load(sample_scores / "ppl_gen0.npy")[index]
        true_nll = -np.load(sample_scores / "true_logprob.npy")[index] / (T - P)
        # the geometric mean of the per-sequence perplexities, as the ppl_gen0 metric
        assert rep["scores"]["gen_0"]["ppl_gen0"] == pytest.approx(np.exp(np.log(ppl0.astype(np.float64)).mean()),
                                                                   rel=1e-5)
        assert rep["scores"]["gen_0"]["true_nll"] == pytest.approx(true_nll.astype(np.float64).mean(), rel=1e-5)
        assert rep["scores"]["human"]["true_nll"] < rep["scores"]["gen_0"]["true_nll"]  # the truth prefers its own
        assert rep["scores"]["human"]["seen_by_gen0"] == 1 and rep["scores"]["gen_0"]["seen_by_gen0"] == 0
        test = np.load(path / "human" / f"rep_{r:02d}" / "test.npy")
        truth = study.open_study(cfg, RunDir(path)).humans[r].truth
        test_true = -true_logprob(truth, test, P) / (T - P)
        assert rep["reference"]["human_test"]["true_nll"] == pytest.approx(test_true.mean(), rel=1e-9)
        assert rep["reference"]["human_test"]["rows"] == len(test)
    report = (path / "report.md").read_text()
    assert "## Provenance" in report and "| 2 | transformer | 19,232 | 0.25 | 1.312 |" in report
    assert (path / "figures" / "provenance.png").stat().st_size > 1000


def test_a_perfect_generator_reads_like_the_human_test_split(tmp_path):
    """The null test of the per-origin scores: under regime=mix fresh=true, generation 1's human rows are new
    draws of the truth that generation 0 never saw (a perfect generator's samples), so generation 0 must
    judge them like the test split: log ppl_gen0_vs_test within Z Welch standard errors of 0, and their true
    NLL within Z standard errors of the test split's. Generation 0's own human rows (the train split) are
    in-sample and flagged as such (seen_by_gen0 = 1)."""
    cfg = tiny_config(regime=MixConfig(human_fraction=0.5, fresh=True), generations=2,
                      data=dataclasses.replace(tiny_config().data, n_train=256, n_test=256))
    loop.run(cfg, tmp_path)
    rep = json.loads((tmp_path / "gen_001" / "provenance.json").read_text())["replicates"][0]
    fresh = rep["scores"]["human"]
    assert fresh["seen_by_gen0"] == 0 and fresh["rows"] == 128
    for diff, (lo, hi) in ((np.log(fresh["ppl_gen0_vs_test"]), np.log(fresh["ppl_gen0_vs_test_ci95"])),
                           (fresh["true_nll_vs_test"], fresh["true_nll_vs_test_ci95"])):
        se = (hi - lo) / 2 / 1.96  # the 95 % Welch half-width is t975(df) >= 1.96 standard errors
        assert abs(diff) <= Z * se, fresh
    gen0 = json.loads((tmp_path / "gen_000" / "provenance.json").read_text())["replicates"][0]["scores"]["human"]
    assert gen0["seen_by_gen0"] == 1
