"""Curation (docs/curation.md): the selections on hand-set scores, the truth as corrector, and tiny studies
under each option: the budget, the kept rows, resume, the unchanged curate=none, and the checks."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from collapse import lineage
from collapse.rng import Phase, key_for, replicate_keys
from collapse.run import loop, study
from collapse.store import RunDir
from collapse.config import Config, SampleConfig, from_dict, study_id, to_dict
from collapse.curation import (CorrectCurateConfig, DetectorCurateConfig, NoCurateConfig, PerplexityCurateConfig,
                               VerifierCurateConfig)
from collapse.data import GrammarConfig, TextConfig
from collapse.errors import ConfigError
from collapse.families import GaussianConfig
from collapse.validate import validate
from collapse.curation import select as curation
from collapse.data import grammar
from collapse.errors import StudyStopped
from collapse.data.grammar import true_logprob
from tests.helpers import assert_mean, assert_same, compose_cfg, outputs, tiny_config

SCORES = np.array([5.0, 1, 3, 3, 0, 9, 2, 7, 4, 6])  # ascending ranks: 4 1 6 2 3 8 0 9 7 5


@pytest.mark.parametrize("keep,start,expected", [("low", 0.0, [1, 2, 4, 6]), ("high", 0.0, [0, 5, 7, 9]),
                                                 ("band", 0.3, [0, 2, 3, 8]), ("band", 0.6, [0, 5, 7, 9])])
def test_quantile_keeps_exactly_the_band(keep, start, expected):
    np.testing.assert_array_equal(curation.select_quantile(SCORES, 4, keep, start), expected)


def test_quantile_ties_rank_by_index():
    np.testing.assert_array_equal(curation.select_quantile(np.zeros(6), 2, "low"), [0, 1])
    np.testing.assert_array_equal(curation.select_quantile(np.zeros(6), 2, "high"), [0, 1])
    np.testing.assert_array_equal(curation.select_quantile(np.zeros(6), 2, "band", 0.5), [3, 4])


def test_threshold_draws_rounds_until_every_replicate_has_n():
    rounds = [np.array([[1, 0, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]]), np.array([[0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0]])]
    asked = []
    out = curation.select(3, lambda k: asked.append(k) or rounds[k], threshold=0.5, max_rounds=3)
    assert asked == [0, 1]
    np.testing.assert_array_equal(out[0].kept_n, [0, 2, 9])  # replicate 0 needed round 1: candidate 6 + 3
    assert len(out[0].scores_M) == 12 and out[0].passed == 4
    np.testing.assert_array_equal(out[1].kept_n, [0, 1, 2])  # replicate 1 had 4 passes in round 0: one round
    assert len(out[1].scores_M) == 6 and out[1].passed == 4
    assert out[0].metrics() == {"curate_acceptance": 0.25, "curate_drawn_per_kept": 4.0, "curate_pass_rate": 4 / 12,
                                "curate_score_mean_before": 4 / 12, "curate_score_mean_after": 1.0}
    with pytest.raises(StudyStopped) as info:  # not a config error: the finished generations stay this study's
        curation.select(3, lambda k: rounds[k], threshold=0.5, max_rounds=1, where="generation 2: ")
    assert "generation 2: only 2 of 6 candidates (0.333) of replicate 0 scored >= 0.5 in 1 rounds" in str(info.value)
    assert "changes the study: run it in a new out_dir" in str(info.value)


def test_candidates_per_round_is_the_ceiling():
    assert VerifierCurateConfig(oversample=1.1).candidates(100) == 110
    assert PerplexityCurateConfig(oversample=1.5).candidates(7) == 11
    assert CorrectCurateConfig().candidates(7) == 7
    assert DetectorCurateConfig(upsample=1.5).candidates(300) == 200  # n / upsample


def _unique_share(tokens_NT, prompt_tokens):  # a user's verifier: the share of distinct generated tokens
    return np.array([len(np.unique(row)) / len(row) for row in tokens_NT[:, prompt_tokens:]])


def _one_number(tokens_NT, prompt_tokens):  # a broken verifier: one score for all candidates
    return float(tokens_NT.mean())


def test_a_users_verifier_is_loaded_and_checked():
    from collapse.curation import scores

    tokens = np.array([[1, 1, 1, 2], [1, 2, 3, 4]])
    np.testing.assert_array_equal(scores.user("tests.test_curate:_unique_share", tokens, 1), [2 / 3, 1.0])
    with pytest.raises(ValueError, match="one finite score per candidate"):
        scores.user("tests.test_curate:_one_number", tokens, 1)
    validate(Config(curate=VerifierCurateConfig(scorer="tests.test_curate:_unique_share"), data=TextConfig(path="x")))


# ------------------------------------------------------------------------------------- the truth corrects


@pytest.fixture(scope="module")
def tiny_grammar():
    return grammar.make_grammar(GrammarConfig(vocab_size=16, n_states=4))


def test_correct_with_fraction_0_changes_nothing(tiny_grammar):
    tokens = np.random.default_rng(0).integers(0, 16, (50, 12)).astype(np.int32)
    out = grammar.correct(tiny_grammar, jax.random.key(1), tokens, 3, 0.0)
    np.testing.assert_array_equal(out, tokens)


def test_correct_with_fraction_1_is_a_draw_of_the_truth(tiny_grammar):
    """Every token redrawn given the corrected prefix: the rows are iid draws of the truth, whatever went in, so
    the mean log-probability per sequence is -T · block entropy (the sd estimated from the sample; 4000 rows)."""
    T = 8
    out = np.asarray(grammar.correct(tiny_grammar, jax.random.key(2), np.zeros((4000, T), np.int32), 0, 1.0))
    lp = true_logprob(tiny_grammar, out)
    assert_mean(lp, -T * grammar.block_entropy(tiny_grammar, T), lp.std(), "log p of fully corrected rows")
    assert (out != 0).any()


def test_correct_tracks_the_state_of_the_corrected_prefix(tiny_grammar):
    """The scan against a plain loop over positions with the same draws, tracking the state in NumPy."""
    N, T, P, fraction = 6, 10, 3, 0.5
    tokens = np.random.default_rng(3).integers(0, 16, (N, T)).astype(np.int32)
    key = jax.random.key(4)
    out = np.asarray(grammar.correct(tiny_grammar, key, tokens, P, fraction))
    log_emit, nxt = np.asarray(tiny_grammar.log_emit_SV), np.asarray(tiny_grammar.next_SV)
    state, ref = np.zeros(N, np.int64), tokens.copy()
    for t in range(P):
        state = nxt[state, ref[:, t]]
    for t, k in zip(range(P, T), jax.random.split(key, T - P)):
        k_replace, k_draw = jax.random.split(k)
        draw = np.asarray(jax.random.categorical(k_draw, log_emit[state]))
        ref[:, t] = np.where(np.asarray(jax.random.uniform(k_replace, (N,))) < fraction, draw, ref[:, t])
        state = nxt[state, ref[:, t]]
    np.testing.assert_array_equal(out, ref)
    assert (out[:, P:] != tokens[:, P:]).any() and (out[:, :P] == tokens[:, :P]).all()


# ------------------------------------------------------------------------------------------ tiny studies

N = 64  # the tiny configs' human train size: the synthetic budget


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _value(path, g, metric, r=0):
    return next(row["value"] for row in _rows(path) if (row["generation"], row["replicate"], row["metric"]) ==
                (g, r, metric))


def _assert_budget(path, generations=2, replicates=1):
    for g in range(generations):
        manifest = json.loads((path / f"gen_{g:03d}" / "manifest.json").read_text())
        assert [rep["size"] for rep in manifest["replicates"]] == [N] * replicates
        for r in range(replicates):
            rep = path / f"gen_{g:03d}" / f"rep_{r:02d}"
            assert np.load(rep / "samples.npy").shape == (N, 16)
            assert len(np.load(rep / "curate_kept.npy")) == N


THRESHOLD = -4.5  # the tiny model's samples score about -4.3 per token under the truth: about half pass


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    path = tmp_path_factory.mktemp("verifier")
    cfg = tiny_config(curate=VerifierCurateConfig(select="threshold", threshold=THRESHOLD, max_rounds=8), replicates=2)
    loop.run(cfg, path)
    return cfg, path


@pytest.mark.reports
def test_a_perfect_verifier_admits_nothing_below_its_threshold(verified):
    cfg, path = verified
    _assert_budget(path, replicates=2)
    for g in range(2):
        for r in range(2):
            rep = path / f"gen_{g:03d}" / f"rep_{r:02d}"
            candidates, kept = np.load(rep / "candidates.npy"), np.load(rep / "curate_kept.npy")
            scores = np.load(rep / "curate_scores.npy")
            truth = grammar.make_grammar(cfg.data)  # noise 0: the exact true log-prob per token
            samples = np.load(rep / "samples.npy")
            np.testing.assert_array_equal(samples, candidates[kept])
            assert (scores[kept] >= THRESHOLD).all() and len(candidates) % (2 * N) == 0
            np.testing.assert_array_equal(kept, np.flatnonzero(scores >= THRESHOLD)[:N])  # the first n to pass
            np.testing.assert_allclose(scores, true_logprob(truth, candidates) / 16, rtol=1e-6)  # float32 sums
            assert _value(path, g, "curate_acceptance", r) == N / len(candidates)
            assert _value(path, g, "curate_pass_rate", r) == (scores >= THRESHOLD).mean()
            after, before = (_value(path, g, f"curate_score_mean_{when}", r) for when in ("after", "before"))
            assert after == scores[kept].mean() and before == scores.mean() and after > before
            # the metrics measure the model: its first n candidates of round 0, not the kept rows
            np.testing.assert_allclose(np.load(rep / "true_logprob.npy"), true_logprob(truth, candidates[:N]),
                                       rtol=1e-6)
    report = (path / "report.md").read_text()
    assert "## Curation" in report and "curate_acceptance" in report.split("## Curation")[1]
    assert "curate_acceptance" not in report.split("## Curation")[0]
    assert (path / "figures" / "curation_scores.png").stat().st_size > 1000
    record = json.loads((path / "gen_001" / "provenance.json").read_text())["replicates"][0]["curation"]["gen_0"]
    assert record["kept"] == N and record["acceptance"] == N / record["drawn"]
    lines = lineage.chain(path, 1, 5)
    kept = int(np.load(path / "gen_000" / "rep_00" / "curate_kept.npy")[5])
    drawn = len(np.load(path / "gen_000" / "rep_00" / "curate_scores.npy"))
    assert lines[2].startswith(f"  curation: kept candidate {kept} of {drawn} (score ")


def test_perplexity_filter_keeps_the_band_under_the_current_model(tmp_path):
    cfg = tiny_config(curate=PerplexityCurateConfig(model="current", keep="band", band_start=0.2, oversample=2.5),
                      sample=SampleConfig(mode="continuation", prompt_len=6, batch_size=64))
    loop.run(cfg, tmp_path)
    _assert_budget(tmp_path)
    for g in range(2):
        rep = tmp_path / f"gen_{g:03d}" / "rep_00"
        scores, kept = np.load(rep / "curate_scores.npy"), np.load(rep / "curate_kept.npy")
        assert len(scores) == 160
        np.testing.assert_array_equal(kept, np.sort(np.argsort(scores, kind="stable")[32:96]))
        # the score: perplexity per generated token under the current model, as the metrics compute it
        np.testing.assert_allclose(scores[:N], np.load(rep / "ppl_self.npy"), rtol=1e-5)
        prompts = np.load(tmp_path / "human" / "rep_00" / "train.npy")[np.load(rep / "prompt_index.npy"), :6]
        np.testing.assert_array_equal(np.load(rep / "samples.npy")[:, :6], prompts)  # the kept rows' prompts
    train_prompt = np.load(tmp_path / "gen_001" / "rep_00" / "train_prompt_row.npy")
    np.testing.assert_array_equal(train_prompt, np.load(tmp_path / "gen_000" / "rep_00" / "prompt_index.npy"))
    before = outputs(tmp_path)  # generation 1 interrupted after training: resumed to the same numbers
    for phase in ("sample", "score"):
        (tmp_path / "gen_001" / f"{phase}.done").unlink()
    (tmp_path / "gen_001" / "rep_00" / "samples.npy").write_bytes(b"garbage")
    loop.run(cfg, tmp_path)
    assert_same(outputs(tmp_path), before)


def test_correct_rewrites_every_sample_toward_the_truth(tmp_path):
    cfg = tiny_config(curate=CorrectCurateConfig(fraction=1.0), generations=1)
    loop.run(cfg, tmp_path)
    _assert_budget(tmp_path, generations=1)
    rep = tmp_path / "gen_000" / "rep_00"
    np.testing.assert_array_equal(np.load(rep / "curate_kept.npy"), np.arange(N))
    candidates, samples = np.load(rep / "candidates.npy"), np.load(rep / "samples.npy")
    truth = grammar.make_grammar(cfg.data)
    expected = grammar.correct(truth, key_for(cfg.seed, 0, 0, Phase.CURATE), candidates, 0, 1.0)
    np.testing.assert_array_equal(samples, expected)
    changed = _value(tmp_path, 0, "curate_corrected_fraction")
    assert changed == (samples != candidates).mean() and 0.5 < changed < 1  # a redrawn token may come out the same
    assert _value(tmp_path, 0, "curate_score_mean_after") > _value(tmp_path, 0, "curate_score_mean_before")
    assert _value(tmp_path, 0, "curate_acceptance") == 1.0


def test_a_curated_study_resumes_to_identical_numbers(tmp_path, monkeypatch):
    """Killed inside generation 1's curation (after its second round of candidates), then rerun: the numbers
    and files of an uninterrupted run; a damaged kept corpus is recomputed the same."""
    cfg = tiny_config(curate=VerifierCurateConfig(select="threshold", threshold=-4.3, oversample=1.5, max_rounds=8))
    ref, run = tmp_path / "ref", tmp_path / "run"
    loop.run(cfg, ref)
    real, calls = VerifierCurateConfig.scores, []

    def interrupted(self, d, round, tokens_RMT):
        calls.append((d.g, round))
        if (d.g, round) == (1, 1):
            raise KeyboardInterrupt
        return real(self, d, round, tokens_RMT)

    monkeypatch.setattr(VerifierCurateConfig, "scores", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.run(cfg, run)
    assert (run / "gen_000" / "score.done").exists() and not (run / "gen_001" / "sample.done").exists()
    monkeypatch.setattr(VerifierCurateConfig, "scores", real)
    loop.run(cfg, run)
    assert_same(outputs(run), outputs(ref))
    (run / "gen_001" / "rep_00" / "curate_kept.npy").write_bytes(b"garbage")
    (run / "gen_001" / "score.done").unlink()
    loop.run(cfg, run)
    assert_same(outputs(run), outputs(ref))


def test_curate_none_is_the_study_without_the_group(tmp_path):
    """A study without curation writes the config.json, study id and files of one written before the group
    existed: no curate key, no curate arrays, no curate rows; such a config.json resumes."""
    cfg = tiny_config(generations=1)
    assert to_dict(cfg).keys() == to_dict(dataclasses.replace(cfg, curate=NoCurateConfig())).keys()
    assert "curate" not in to_dict(cfg) and from_dict(to_dict(cfg)) == cfg
    assert study_id(compose_cfg()) == "grammar-tiny-replace-seed0-6cd4f272eb"  # the id written before curation
    curated = dataclasses.replace(cfg, curate=VerifierCurateConfig())
    assert to_dict(curated)["curate"]["_option"] == "verifier" and from_dict(to_dict(curated)) == curated
    loop.run(cfg, tmp_path)
    assert "curate" not in json.loads((tmp_path / "config.json").read_text())
    assert not list(tmp_path.rglob("curate_*")) and not list(tmp_path.rglob("candidates.npy"))
    assert not any(row["metric"].startswith("curate") for row in _rows(tmp_path))
    markers = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.done")}
    loop.run(cfg, tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.done")} == markers
    with pytest.raises(ConfigError, match="curate._option"):
        loop.run(curated, tmp_path)
    # the samples are those of the sampling stream of a study without curation (round 0 of Phase.SAMPLE)
    opened = study.open_study(cfg, RunDir(tmp_path))
    params = RunDir(tmp_path).load_params(0, opened.family(0).abstract(1))
    again = opened.family(0).sample(params, np.zeros((1, N, 0), np.int32),
                                    replicate_keys(cfg.seed, 0, 1, Phase.SAMPLE), cfg.sample, 16)
    np.testing.assert_array_equal(np.load(tmp_path / "gen_000" / "rep_00" / "samples.npy"), again[0])


def test_curation_composes_from_the_command_line():
    cfg = compose_cfg("curate=perplexity", "curate.keep=band", "curate.band_start=0.1", "curate.model=current")
    assert cfg.curate == PerplexityCurateConfig(keep="band", band_start=0.1, model="current")
    assert compose_cfg().curate == NoCurateConfig()
    assert compose_cfg("curate=detector").curate == DetectorCurateConfig()
    validate(compose_cfg("curate=verifier", "curate.select=threshold", "curate.oversample=1"))
    validate(compose_cfg("curate=verifier", "curate.scorer=numpy:mean"))  # any importable function


BAD = [
    (dict(curate=VerifierCurateConfig(), data=TextConfig(path="a.txt")), "curate.scorer"),
    (dict(curate=CorrectCurateConfig(), data=TextConfig(path="a.txt")), "curate"),
    (dict(curate=VerifierCurateConfig(), model=GaussianConfig()), "curate"),
    (dict(curate=VerifierCurateConfig(oversample=0.5)), "curate.oversample"),
    (dict(curate=VerifierCurateConfig(oversample=0.5, select="threshold")), "curate.oversample"),
    (dict(curate=PerplexityCurateConfig(oversample=1.0)), "curate.oversample"),  # keeps every candidate
    (dict(curate=CorrectCurateConfig(fraction=1.5)), "curate.fraction"),
    (dict(curate=CorrectCurateConfig(fraction=-0.1)), "curate.fraction"),
    (dict(curate=CorrectCurateConfig(unit="word")), "curate.unit"),
    (dict(curate=PerplexityCurateConfig(keep="band", band_start=0.6)), "curate.band_start"),
    (dict(curate=PerplexityCurateConfig(keep="band", band_start=-0.1)), "curate.band_start"),
    (dict(curate=PerplexityCurateConfig(keep="middle")), "curate.keep"),
    (dict(curate=PerplexityCurateConfig(model="gen1")), "curate.model"),
    (dict(curate=VerifierCurateConfig(select="top")), "curate.select"),
    (dict(curate=VerifierCurateConfig(noise=-1.0)), "curate.noise"),
    (dict(curate=VerifierCurateConfig(threshold=float("nan"), select="threshold")), "curate.threshold"),
    (dict(curate=VerifierCurateConfig(select="threshold", max_rounds=0)), "curate.max_rounds"),
    (dict(curate=VerifierCurateConfig(scorer="no_such_module:score")), "curate.scorer"),
    (dict(curate=VerifierCurateConfig(scorer="numpy")), "curate.scorer"),
    (dict(curate=VerifierCurateConfig(scorer="numpy:no_such_function")), "curate.scorer"),
    (dict(curate=DetectorCurateConfig(upsample=4.0)), "curate.upsample"),  # > max_repeats: cannot fill n
    (dict(curate=DetectorCurateConfig(upsample=0.0)), "curate.upsample"),
    (dict(curate=DetectorCurateConfig(max_repeats=0)), "curate.max_repeats"),
    (dict(curate=DetectorCurateConfig(bias=-1.0)), "curate.bias"),
    (dict(curate=DetectorCurateConfig(holdout=1.0)), "curate.holdout"),
    (dict(curate=DetectorCurateConfig(steps=0)), "curate.steps"),
]


@pytest.mark.parametrize("overrides,key", BAD)
def test_validation_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        validate(Config(**overrides))
    assert info.value.key == key and str(info.value).startswith(key)


def test_detector_resamples_the_budget_from_cross_fitted_scores(tmp_path):
    """curate=detector: M = ceil(n / upsample) candidates scored by the detector that did not train on them,
    n kept by Drayson et al.'s resampling (each at most max_repeats times); the metrics still measure an iid
    draw of n; a rerun of generation 1's sampling gives the same files."""
    from collapse.curation import classifier, detector

    c = DetectorCurateConfig(upsample=1.5, max_repeats=3, steps=20, d_embed=8)
    cfg = tiny_config(curate=c)
    loop.run(cfg, tmp_path)
    _assert_budget(tmp_path)
    M = detector.n_candidates(N, 1.5)
    for g in range(2):
        rep = tmp_path / f"gen_{g:03d}" / "rep_00"
        candidates, kept = np.load(rep / "candidates.npy"), np.load(rep / "curate_kept.npy")
        scores = np.load(rep / "curate_scores.npy")
        assert M == 43 and len(scores) == M and len(candidates) == N  # the n - M beyond M are only measured
        assert kept.max() < M and np.bincount(kept).max() <= 3 and (np.diff(kept) >= 0).all()
        np.testing.assert_array_equal(np.load(rep / "samples.npy"), candidates[kept])
        key = key_for(cfg.seed, g, 0, Phase.CURATE)
        human = np.load(tmp_path / "human" / "rep_00" / "train.npy")
        expected, accuracy, used = classifier.cross_fitted(key, human, candidates[:M], vocab_size=16, steps=20,
                                                         lr=c.lr, d_embed=8, holdout=c.holdout,
                                                         significance=c.significance)
        np.testing.assert_array_equal(scores, expected)
        assert _value(tmp_path, g, "curate_detector_accuracy") == accuracy and 0 <= accuracy <= 1
        assert _value(tmp_path, g, "curate_detector_used") == used
        assert _value(tmp_path, g, "curate_drawn_per_kept") == M / N
        assert _value(tmp_path, g, "curate_unique_kept") == len(np.unique(kept)) / N
        # acceptance: the distinct candidates kept per candidate drawn, at most 1 although n > M rows are kept
        assert _value(tmp_path, g, "curate_acceptance") == len(np.unique(kept)) / M <= 1
        w = detector.importance_weights(scores, c.bias)
        assert _value(tmp_path, g, "curate_ess") == pytest.approx(w.sum() ** 2 / (w**2).sum() / M, rel=1e-12)
        marker = json.loads((tmp_path / f"gen_{g:03d}" / "sample.done").read_text())
        assert marker["candidates"] == [M]  # drawn for curation; the metrics' n - M extra rows are not candidates
    before = outputs(tmp_path)
    for phase in ("sample", "score"):
        (tmp_path / "gen_001" / f"{phase}.done").unlink()
    loop.run(cfg, tmp_path)
    assert_same(outputs(tmp_path), before)


def test_a_ratio_verifier_scores_the_truth_against_the_sampling_model(tmp_path):
    """scorer=truth_ratio: log p_true - log q_g per generated token of every candidate (the same forward pass as
    the metrics' ppl_self), the best half kept."""
    cfg = tiny_config(curate=VerifierCurateConfig(scorer="truth_ratio"), generations=1)
    loop.run(cfg, tmp_path)
    _assert_budget(tmp_path, generations=1)
    rep = tmp_path / "gen_000" / "rep_00"
    candidates, scores = np.load(rep / "candidates.npy"), np.load(rep / "curate_scores.npy")
    truth = grammar.make_grammar(cfg.data)
    own = -np.log(np.load(rep / "ppl_self.npy"))  # the metrics' log q per token of the first n candidates
    np.testing.assert_allclose(scores[:N], true_logprob(truth, candidates[:N]) / 16 - own, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.load(rep / "curate_kept.npy"), np.sort(np.argsort(-scores, kind="stable")[:N]))


def test_sequence_correction_swaps_whole_continuations_for_the_truths(tiny_grammar):
    """unit=sequence: a sample's generated part is either its own or the truth's continuation of its prompt
    (`grammar.extend` with the same key), in a share of rows that is binomial(N, fraction) (4 sd)."""
    N, T, P, fraction = 2000, 10, 3, 0.3
    tokens = np.random.default_rng(5).integers(0, 16, (N, T)).astype(np.int32)
    key = jax.random.key(6)
    out = np.asarray(grammar.correct_sequences(tiny_grammar, key, tokens, P, fraction))
    truth = np.asarray(grammar.extend(tiny_grammar, jax.random.split(key)[1], tokens[:, :P], T - P))
    own, theirs = (out[:, P:] == tokens[:, P:]).all(1), (out[:, P:] == truth).all(1)
    assert (own | theirs).all() and (out[:, :P] == tokens[:, :P]).all()
    replaced = ~own  # a row whose truth continuation equals its own counts as kept: rare at 7 tokens of 16
    assert_mean(replaced.astype(float), fraction, np.sqrt(fraction * (1 - fraction)), "rows replaced")
    np.testing.assert_array_equal(grammar.correct_sequences(tiny_grammar, key, tokens, P, 0.0), tokens)
