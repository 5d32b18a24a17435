"""End-to-end runs of the loop on tiny configs: the documented run directory, resume, refusal of bad input."""

import dataclasses
import json

import numpy as np
import pytest

from collapse.run import loop
from collapse.run import study
from collapse.config import SampleConfig
from collapse.data import TextConfig
from collapse.errors import ConfigError, DataError
from collapse.regimes import AccumulateConfig, MixConfig
from collapse.metrics.families import family_of
from collapse.store import PHASES, RunDir
from tests.helpers import tiny_config, write_corpus


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    cfg = tiny_config(regime=AccumulateConfig(), replicates=2, tracking="tensorboard")
    loop.run(cfg, path)
    return cfg, path


def test_run_directory_layout(finished):
    cfg, path = finished
    d = cfg.data
    assert json.loads((path / "config.json").read_text())["regime"]["_option"] == "accumulate"
    for split, n in (("train", d.n_train), ("valid", d.n_valid), ("test", d.n_test)):  # each replicate its own
        own = [np.load(path / "human" / f"rep_{r:02d}" / f"{split}.npy") for r in range(2)]
        assert own[0].shape == own[1].shape == (n, d.seq_len) and not np.array_equal(own[0], own[1])
    for g in range(2):
        gen = path / f"gen_{g:03d}"
        assert all((gen / f"{p}.done").exists() for p in PHASES)
        assert (gen / "checkpoint").is_dir()
        manifest = json.loads((gen / "manifest.json").read_text())
        expected = {"human": d.n_train} if g == 0 else {"human": d.n_train, "gen_0": d.n_train}
        assert [r["counts"] for r in manifest["replicates"]] == [expected, expected]
        for r in range(2):
            rep = gen / f"rep_{r:02d}"
            samples = np.load(rep / "samples.npy")
            assert samples.shape == (d.n_train, d.seq_len) and samples.dtype == np.int32
            assert samples.min() >= 0 and samples.max() < d.vocab_size
            np.testing.assert_array_equal(np.load(rep / "provenance.npy"), g)
            assert len(np.load(rep / "train_provenance.npy")) == sum(expected.values())
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert {(r["generation"], r["replicate"]) for r in rows} == {(g, r) for g in range(2) for r in range(2)}
    names = {r["metric"] for r in rows}
    assert {"ppl_human_test", "kl_true", "true_nll_samples", "ppl_gen0", "ppl_gen0_p99", "ppl_self_ratio",
            "distinct_4", "unique_n_fixed", "self_bleu4", "bigram_entropy", "compression_ratio", "rep_4", "dup_frac",
            "tail_mass_ratio", "tail_mass_ratio_model", "survival_tail", "kl_unigram", "zipf_exponent",
            "tail_mass_ratio_true", "kl_unigram_true"} <= names
    assert all(np.isfinite(r["value"]) for r in rows)
    assert {family_of(name) for name in names} <= {"perplexity", "diversity", "tails", "tails_true", "teacher"}
    reference = json.loads((path / "human" / "reference.json").read_text())  # one row per human dataset
    assert len(reference) == 2 and all(np.isfinite(row["tail_mass_ratio"]) and "self_bleu4" in row for row in reference)
    for g in range(2):  # the score phase's arrays
        rep = path / f"gen_{g:03d}" / "rep_01"
        assert np.load(rep / "ppl_gen0.npy").shape == (d.n_train,) and np.load(rep / "ppl_gen0.npy").dtype == np.float32
        assert np.load(rep / "true_logprob.npy").shape == (d.n_train,)
        assert np.load(rep / "token_counts.npy").sum() == d.n_train * d.seq_len
    gen0 = path / "gen_000" / "rep_00"  # generation 0 is its own judge
    np.testing.assert_array_equal(np.load(gen0 / "ppl_gen0.npy"), np.load(gen0 / "ppl_self.npy"))
    last_seen = np.load(path / "last_seen.npy")
    counts = np.load(path / "gen_001" / "rep_00" / "token_counts.npy")
    assert last_seen.shape == (2, d.vocab_size) and (last_seen[0][counts > 0] == 1).all()
    report = (path / "report.md").read_text()
    assert "| generation |" in report and "2/2 generations complete" in report and "## Tail forgetting" in report
    assert "Per-sequence histograms (replicates pooled; generations 0, 1)" in report  # what is shown, not "of ten"
    for figure in ("perplexity", "diversity", "tails", "tails_true", "ppl_gen0_hist", "true_nll_hist",
                   "rank_frequency", "bucket_mass"):
        assert (path / "figures" / f"{figure}.png").stat().st_size > 1000
    events = b"".join(p.read_bytes() for p in (path / "tensorboard").glob("events.out.tfevents.*"))
    assert b"train/loss/gen_001" in events and b"metrics/kl_true" in events


def test_replicates_differ(finished):
    _, path = finished
    a = np.load(path / "gen_001" / "rep_00" / "samples.npy")
    b = np.load(path / "gen_001" / "rep_01" / "samples.npy")
    assert not np.array_equal(a, b)


def test_resume_recomputes_nothing_and_extends(finished, tmp_path):
    cfg, path = finished
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*.done")}
    loop.run(cfg, path)  # everything is marked done: nothing is recomputed
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*.done")} == before

    # an interrupted copy: generation 1 lost its sample and score phases; resuming gives the same numbers
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    for phase in ("sample", "score"):
        (copy / "gen_001" / f"{phase}.done").unlink()
    (copy / "gen_001" / "rep_00" / "samples.npy").write_bytes(b"garbage")
    loop.run(cfg, copy)
    np.testing.assert_array_equal(np.load(copy / "gen_001/rep_00/samples.npy"),
                                  np.load(path / "gen_001/rep_00/samples.npy"))
    assert (copy / "metrics.jsonl").read_text() == (path / "metrics.jsonl").read_text()

    loop.run(dataclasses.replace(cfg, generations=3), copy)  # more generations: only the new one runs
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert max(r["generation"] for r in rows) == 2
    assert [r for r in rows if r["generation"] < 2] == [json.loads(x) for x in
                                                        (path / "metrics.jsonl").read_text().splitlines()]


def test_resume_reads_only_the_checkpoints_it_needs(finished, tmp_path, monkeypatch):
    """A finished study reads no checkpoint; extending it (train.init=scratch) reads generation 0's, the judge
    of the new generation's samples, and no other; a damaged checkpoint is retrained when it is needed."""
    import shutil

    cfg, path = finished
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    loaded, real = [], RunDir.load_params
    monkeypatch.setattr(RunDir, "load_params", lambda self, g, abstract: loaded.append(g) or real(self, g, abstract))
    loop.run(cfg, copy)
    assert loaded == []
    victim = next(p for p in sorted((copy / "gen_000" / "checkpoint").rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"damage")
    loop.run(dataclasses.replace(cfg, generations=3), copy)
    assert loaded == []  # the damaged judge was retrained, not read
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in rows if r["generation"] < 2] == [json.loads(x) for x in
                                                        (path / "metrics.jsonl").read_text().splitlines()]
    loop.run(dataclasses.replace(cfg, generations=4), copy)
    assert loaded == [0]  # intact now: read once, as the judge of generation 3


@pytest.mark.reports
def test_a_model_schedule_trains_each_generation_at_its_size(tmp_path):
    """A large teacher, then smaller students: each generation's model and parameter count in its manifest and
    the report; the samples of a small student judged by the (larger) generation-0 model."""
    cfg = tiny_config(model_schedule=["tiny", "transformer"], generations=3)  # tiny at its sizes, then TINY_MODEL
    loop.run(cfg, tmp_path)
    manifests = [json.loads((tmp_path / f"gen_{g:03d}" / "manifest.json").read_text()) for g in range(3)]
    assert [(m["model"], m["parameters"]) for m in manifests] == [("tiny", 417408), ("transformer", 19232),
                                                                   ("transformer", 19232)]
    judged = json.loads((tmp_path / "gen_001" / "provenance.json").read_text())["replicates"][0]["scores"]["gen_0"]
    ppl0 = np.load(tmp_path / "gen_000" / "rep_00" / "ppl_gen0.npy")  # generation 0's samples by generation 0
    # the geometric mean per token: every sample has the same number of scored tokens
    assert judged["ppl_gen0"] == pytest.approx(np.exp(np.log(ppl0.astype(np.float64)).mean()), rel=1e-5)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["generation"] for r in rows} == {0, 1, 2} and all(np.isfinite(r["value"]) for r in rows)
    assert "| 0 | tiny | 417,408 |" in (tmp_path / "report.md").read_text()
    with pytest.raises(ConfigError, match="train.init=previous starts generation 1 \\(transformer\\)"):
        loop.run(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init="previous")), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_different_study_in_the_same_directory_is_refused(finished):
    cfg, path = finished
    with pytest.raises(ConfigError, match="regime"):
        loop.run(dataclasses.replace(cfg, regime=MixConfig()), path)


def test_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="train.batch_size"):  # 64 sequences cannot fill a batch of 100
        loop.run(tiny_config(train=dataclasses.replace(tiny_config().train, batch_size=100)), out)
    assert not out.exists()
    with pytest.raises(DataError, match="empty"):
        (tmp_path / "empty.txt").write_text("")
        loop.run(tiny_config(data=TextConfig(path=str(tmp_path / "empty.txt"), seq_len=16)), out)
    assert not out.exists()


def test_text_data_with_continuation_and_fresh_mix(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", words=["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"])
    cfg = tiny_config(data=TextConfig(path=corpus, seq_len=16, fresh_fraction=0.3),
                      sample=SampleConfig(mode="continuation", prompt_len=8, batch_size=64),
                      regime=MixConfig(human_fraction=0.5, fresh=True))
    loop.run(cfg, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "gen_001" / "manifest.json").read_text())
    n_train = len(np.load(tmp_path / "run" / "human" / "train.npy"))
    assert manifest["replicates"][0]["counts"] == {"human": round(n_train / 2), "gen_0": n_train - round(n_train / 2)}
    n_fresh = len(np.load(tmp_path / "run" / "human" / "fresh.npy"))
    assert n_fresh >= round(n_train / 2)
    assert (tmp_path / "run" / "gen_001" / "rep_00" / "prompt_index.npy").exists()
    names = {json.loads(x)["metric"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()}
    assert "kl_true" not in names and "tail_mass_ratio_true" not in names
    assert {"ppl_human_test", "ppl_gen0", "compression_ratio", "tail_mass_ratio"} <= names

    # extending the study past its reserve is refused before any training, with the numbers
    g = n_fresh // round(n_train / 2) + 2
    with pytest.raises(ConfigError, match=rf"data.fresh_fraction: needs {(g - 1) * round(n_train / 2)} fresh human "
                                          rf"sequences over {g} generations \({round(n_train / 2)} per generation\) "
                                          rf"but the reserve data.fresh_fraction=0.3 holds {n_fresh}"):
        loop.run(dataclasses.replace(cfg, generations=g), tmp_path / "run")
    assert not (tmp_path / "run" / "gen_002").exists()


def test_fresh_mix_on_text_without_a_reserve_is_refused_before_any_training(tmp_path):
    cfg = tiny_config(data=TextConfig(path=write_corpus(tmp_path / "corpus.txt"), seq_len=16),
                      regime=MixConfig(human_fraction=0.1, fresh=True))
    n_train = len(study.load_humans(cfg, RunDir(tmp_path / "probe"))[0].train)
    n_h = round(0.1 * n_train)
    with pytest.raises(ConfigError) as err:
        loop.run(cfg, tmp_path / "run")
    assert str(err.value) == (f"data.fresh_fraction: needs {n_h} fresh human sequences over 2 generations ({n_h} "
                              "per generation) but the reserve data.fresh_fraction=0.0 holds 0; raise "
                              "data.fresh_fraction or lower generations")
    assert not (tmp_path / "run").exists()


def test_raising_generations_extends_a_fresh_mix_grammar_study(tmp_path):
    cfg = tiny_config(regime=MixConfig(human_fraction=0.25, fresh=True))
    path = tmp_path / "run"
    loop.run(cfg, path)
    before = {p.relative_to(path): np.load(p) for p in path.glob("gen_00[01]/**/*.npy")}
    metrics = (path / "metrics.jsonl").read_text()
    fresh = np.load(path / "human" / "rep_00" / "fresh.npy")
    assert len(fresh) == 16  # 0.25 of 64 for generation 1

    loop.run(dataclasses.replace(cfg, generations=3), path)
    assert (path / "gen_002" / "score.done").exists()
    for name, array in before.items():
        np.testing.assert_array_equal(np.load(path / name), array, err_msg=str(name))
    assert (path / "metrics.jsonl").read_text().startswith(metrics)
    grown = np.load(path / "human" / "rep_00" / "fresh.npy")
    assert len(grown) == 32 and np.array_equal(grown[:16], fresh)  # generation 2's rows appended
    manifest = json.loads((path / "gen_002" / "manifest.json").read_text())
    assert manifest["replicates"][0]["counts"] == {"human": 16, "gen_1": 48}
    index = np.load(path / "gen_002" / "rep_00" / "train_index.npy")
    np.testing.assert_array_equal(index[:16], 64 + np.arange(16, 32))  # rows after train: reserve rows 16..31
    fixed = study.load_humans(dataclasses.replace(cfg, regime=MixConfig(human_fraction=0.25)), RunDir(tmp_path / "x"))
    np.testing.assert_array_equal(np.load(path / "human" / "rep_00" / "train.npy"), fixed[0].train)  # as with fresh=false
