"""Several labs in one study (docs/ecosystems.md): a lab alone is the single-lab study, W and the web add up to
their rows, a rival's model teaches, the between-lab measures keep their identities, resume is exact, and a
bad ecosystem is refused before any compute."""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse import lineage
from collapse.config import TrainConfig
from collapse.data import GrammarConfig, TextConfig, grammar
from collapse.data.grammar import true_logprob
from collapse.data.human import Seat
from collapse.errors import ConfigError, DataError
from collapse.labs import HumanConfig, LabConfig, WebConfig, w_row
from collapse.metrics import ecosystem
from collapse.model import with_bos
from collapse.run import fit, loop
from collapse.run.ecosystem import Ecosystem
from collapse.run.pools import allocate
from collapse.run.study import load_humans
from collapse.store import RunDir
from collapse.validate import validate
from tests.helpers import assert_same, outputs, tiny_config, write_corpus

# a posts a quarter of its samples and reads only itself; b reads half a, half itself, and distils a's model;
# c trains on a crawl of the web (half the human train split, 8 new human rows a round, a's posts)
LABS = [LabConfig("a", post_fraction=0.25),
        LabConfig("b", reads={"a": 0.5, "b": 0.5}, set={"train": {"target": "soft", "teacher": "lab:a"}}),
        LabConfig("c", crawl=48)]
N_TRAIN, SHARED = 64, 32  # tiny_config's human train split; human.shared_fraction 0.5 of it
PRIVATE = {"a": 11, "b": 10, "c": 11}  # the other 32 rows in three nearly equal contiguous parts


def _rows(path, g=None, lab=None):
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if (g is None or r["generation"] == g) and (lab is None or r.get("lab") == lab)]


def _value(rows, metric):
    (value,) = [r["value"] for r in rows if r["metric"] == metric]
    return value


TAUGHT = {}  # (lab, generation) -> the teacher its training received, recorded by the eco fixture


@pytest.fixture(scope="module")
def eco(tmp_path_factory):
    path = tmp_path_factory.mktemp("eco") / "run"
    cfg = tiny_config(labs=LABS, human=HumanConfig(shared_fraction=0.5), web=WebConfig(human_rows=8))
    train = fit._train

    def recording(study, g, data_RNT, init, tracker, teacher=None, weights_RN=None):
        TAUGHT[study.store.path.name, g] = teacher
        return train(study, g, data_RNT, init, tracker, teacher, weights_RN)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit, "_train", recording)
        loop.run(cfg, path)
    return cfg, path


def test_a_lab_alone_is_the_single_lab_study(tmp_path):
    """Lab 0 draws the single-lab study's keys and, sharing all human data, trains on its data: same numbers."""
    loop.run(tiny_config(), tmp_path / "single")
    loop.run(tiny_config(labs=[LabConfig("a")]), tmp_path / "eco")
    single, lab = outputs(tmp_path / "single"), outputs(tmp_path / "eco" / "labs" / "a")
    assert {f.name for f in lab[1].keys() - single[1].keys()} == {"train_lab.npy"}  # whose sample: its own
    assert_same(single, (lab[0], {f: lab[1][f] for f in single[1]}))


def test_human_segments_are_shared_and_private():
    seats = [Seat(k, 3, 0.5).rows(N_TRAIN) for k in range(3)]
    for rows, size in zip(seats, PRIVATE.values()):
        assert list(rows[:SHARED]) == list(range(SHARED)) and len(rows) == SHARED + size
    private = np.concatenate([rows[SHARED:] for rows in seats])
    assert sorted(private) == list(range(SHARED, N_TRAIN))  # disjoint, and together the rest


def test_a_share_of_every_lab_is_spread_evenly():
    names = ["a", "b", "c", "d"]
    assert w_row(LabConfig("b", reads={"all": 1.0}), names) == {n: 0.25 for n in names}
    half = w_row(LabConfig("b", reads={"all": 0.5, "b": 0.5}), names)
    assert half == {"a": 0.125, "b": 0.625, "c": 0.125, "d": 0.125}
    assert w_row(LabConfig("b"), names) == {"b": 1.0}
    labs = [LabConfig(n, reads={"all": 1.0}) for n in names]
    validate(tiny_config(labs=labs, human=HumanConfig(shared_fraction=0.0)))


def test_allocate_splits_a_budget_exactly():
    assert allocate({0: 0.5, 1: 0.5}, 42) == {0: 21, 1: 21}
    assert allocate({0: 1 / 3, 1: 1 / 3, 2: 1 / 3}, 10) == {0: 4, 1: 3, 2: 3}  # largest remainder, then lab order
    assert allocate({0: 0.0, 1: 1.0}, 7) == {1: 7}


def test_each_lab_trains_on_what_it_reads(eco):
    cfg, path = eco
    counts = {lab: json.loads((path / "labs" / lab / "gen_001" / "manifest.json").read_text())["replicates"][0]["counts"]
              for lab in "abc"}
    n = {lab: SHARED + size for lab, size in PRIVATE.items()}  # each lab's synthetic budget: its own train rows
    manifest = json.loads((path / "labs" / "b" / "gen_000" / "manifest.json").read_text())["replicates"][0]
    assert manifest["human_rows"] == {"shared": SHARED, "own": PRIVATE["b"]}
    assert counts["a"] == {"a/gen_0": n["a"]}
    assert counts["b"] == {"a/gen_0": n["b"] // 2, "b/gen_0": n["b"] // 2}
    # c crawls the web as of round 0: 32 shared human rows, 8 new human rows, a's posts round(0.25 n_a) = 11
    assert sum(counts["c"].values()) == 48 and set(counts["c"]) <= {"human", "a/gen_0"}
    web = json.loads((path / "gen_000" / "web.json").read_text())["replicates"][0]
    assert web["by_origin"] == {"human": SHARED + 8, "a/gen_0": 11} and web["rows"] == 51
    assert web["synthetic_share"] == pytest.approx(11 / 51) and web["mean_depth"] == pytest.approx(11 / 51)
    b_record = json.loads((path / "labs" / "b" / "gen_001" / "provenance.json").read_text())["replicates"][0]
    assert b_record["by_label_source"] == {"soft_a/gen_0": n["b"]}  # a's model labels all of b's rows
    assert _value(_rows(path / "labs" / "b", 1), "teacher_gap_kl_true") == pytest.approx(
        _value(_rows(path / "labs" / "b", 1), "kl_true") - _value(_rows(path / "labs" / "a", 0), "kl_true"))


def test_the_rival_teacher_is_the_other_labs_model(eco):
    """b's generation 1 learns the next-token distributions of a's generation-0 model as a saved it — not of b's
    own generation 0 — on the rows b trains on: the teacher's logits are a's, to the last bit."""
    _, path = eco
    teacher = TAUGHT["b", 1]
    assert teacher is not None and teacher.soft_RN.all() and TAUGHT["a", 1] is None  # a trains on tokens
    saved = {lab: RunDir(path / "labs" / lab).load_params(0, teacher.params) for lab in "ab"}
    tokens_BT = np.load(RunDir(path / "labs" / "a").array(0, 0, "samples"))[:4]  # rows b reads from a

    def logits(params_R):
        model = nnx.merge(teacher.graphdef, jax.tree.map(lambda x: x[0], params_R))
        return np.asarray(model(with_bos(jnp.asarray(tokens_BT), model.bos)))

    taught = logits(teacher.params)
    np.testing.assert_array_equal(taught, logits(saved["a"]))
    assert np.abs(taught - logits(saved["b"])).max() > 0.1  # b's own model would have taught something else


def test_the_chain_of_an_example_crosses_labs(eco):
    _, path = eco
    origins = np.load(path / "labs" / "b" / "gen_001" / "rep_00" / "train_lab.npy")
    row = int(np.flatnonzero(origins == 0)[0])  # a row of b's training set that a sampled
    lines = lineage.chain(path / "labs" / "b", 1, row)
    assert "of lab a's generation 0" in lines[1] and lines[2] == "  labels: a/soft_gen_0"
    assert any(line.startswith("  lab a's generation 0") for line in lines) and lines[-1].endswith("ends here")


@pytest.mark.reports
def test_between_lab_rows_keep_their_identities(eco):
    _, path = eco
    for g in range(2):
        whole = _rows(path, g, ecosystem.ALL)
        js = [_value(_rows(path, g, pair), "js_pair") for pair in ("a|b", "a|c", "b|c")]
        assert _value(whole, "homogenisation_js") == pytest.approx(np.mean(js), rel=1e-9)
        for pair in ("a|b", "a|c", "b|c"):
            pair_rows = _rows(path, g, pair)
            assert min(_value(pair_rows, m) for m in ("kl_pair_ab", "kl_pair_ba", "js_pair")) >= 0
            assert 0 <= _value(pair_rows, "bigram_overlap") <= 1
            assert {"private_gain_ab", "private_gain_ba"} <= {row["metric"] for row in pair_rows}
        assert _value(whole, "labs_mean_kl_true") == pytest.approx(
            np.mean([_value(_rows(path, g, lab), "kl_true") for lab in "abc"]), rel=1e-12)
        # Jensen: the mixture's KL from the truth is at most the labs' mean KL (same test rows, same positions)
        mean_kl = np.mean([_value(_rows(path, g, lab), "kl_true") for lab in "abc"])
        assert _value(whole, "kl_true_mixture") <= mean_kl + 1e-6
    assert "## The ecosystem" in (path / "report.md").read_text()


def test_isolated_labs_do_not_homogenise(tmp_path):
    """Null test: two labs of one config on disjoint human data, reading only themselves, drift apart on their
    own; their divergence does not fall over the rounds beyond four standard errors of its change across
    replicates (each replicate its own human data). Homogenisation needs reads, a web or a shared teacher."""
    R = 6
    cfg = tiny_config(labs=[LabConfig("a"), LabConfig("b")], human=HumanConfig(shared_fraction=0.0), replicates=R,
                      generations=3)
    loop.run(cfg, tmp_path / "run")
    js = {(g, r["replicate"]): r["value"] for g in (0, 2) for r in _rows(tmp_path / "run", g, "a|b")
          if r["metric"] == "js_pair"}
    change_R = np.array([js[2, r] - js[0, r] for r in range(R)])
    assert change_R.mean() > -4 * change_R.std(ddof=1) / np.sqrt(R)


def test_measures_of_identical_labs():
    """Two copies of one model: no divergence, full overlap, and the mixture is the model itself."""
    x = np.random.default_rng(0).integers(0, 8, (20, 12))
    assert ecosystem.bigram_overlap(x, x, 8) == 1.0
    lp = np.random.default_rng(1).normal(-20, 2, 50)
    truth = lp + 3.0
    assert ecosystem.mixture_kl(truth, np.stack([lp, lp]), 12) == pytest.approx(3.0 / 12)


def test_the_private_gain_of_a_perfect_model_is_zero():
    """Null test: the truth scores an independent draw as it scores the test split — the gain is 0 within four
    standard errors (two independent samples of per-sequence log-probabilities, 8 pairs of draws)."""
    truth = grammar.make_grammar(GrammarConfig(vocab_size=64, n_states=8, seq_len=16))
    for i in range(8):
        test, private = (np.asarray(true_logprob(truth, grammar.sample(truth, jax.random.key(2 * i + j), 400, 16)))
                         for j in range(2))
        se = np.sqrt(test.var(ddof=1) / len(test) + private.var(ddof=1) / len(private)) / 16
        assert abs(ecosystem.private_gain(test, private, 16)) < 4 * se


def test_an_interrupted_ecosystem_resumes_to_the_same_numbers(eco, tmp_path):
    _, path = eco
    copy = tmp_path / "run"
    shutil.copytree(path, copy)
    (copy / "labs" / "c" / "gen_001" / "score.done").unlink()  # killed after c's sampling, before the round
    (copy / "gen_001" / "score.done").unlink()
    loop.run(eco[0], copy)
    assert_same(outputs(path), outputs(copy))
    for lab in "abc":
        assert_same(outputs(path / "labs" / lab), outputs(copy / "labs" / lab))


@pytest.mark.parametrize("labs, human, web, key", [
    ([LabConfig("a"), LabConfig("a")], HumanConfig(), WebConfig(), "labs[1].name"),
    ([LabConfig("all")], HumanConfig(), WebConfig(), "labs[0].name"),
    ([LabConfig("a", reads={"a": 0.5, "b": 0.4}), LabConfig("b")], HumanConfig(), WebConfig(), "labs[0].reads"),
    ([LabConfig("a", reads={"z": 1.0})], HumanConfig(), WebConfig(), "labs[0].reads.z"),
    ([LabConfig("a", crawl=8, reads={"a": 1.0})], HumanConfig(), WebConfig(), "labs[0].reads"),
    ([LabConfig("a", set={"train.teacher": "lab:z"})], HumanConfig(), WebConfig(), "labs[0].set.train.teacher"),
    ([LabConfig("a", set={"data.n_train": 8})], HumanConfig(), WebConfig(), "labs[0].set.data.n_train"),
    ([LabConfig("a", set={"train.lr": -1.0})], HumanConfig(), WebConfig(), "labs[0].set.train.lr"),
    ([LabConfig("a")], HumanConfig(), WebConfig(human_rows=4), "web.human_rows"),
    ([], HumanConfig(shared_fraction=0.5), WebConfig(), "human.shared_fraction"),
])
def test_a_bad_ecosystem_is_refused_naming_its_key(labs, human, web, key):
    with pytest.raises(ConfigError) as e:
        validate(tiny_config(labs=labs, human=human, web=web))
    assert e.value.key == key


def test_a_lab_without_human_data_is_refused_before_anything_is_written(tmp_path):
    cfg = tiny_config(labs=[LabConfig(name) for name in "abcdefgh"], human=HumanConfig(shared_fraction=0.0))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n_train=4))  # 8 labs, 4 rows, none shared
    with pytest.raises(ConfigError, match="lab a gets no human train rows") as e:
        loop.run(cfg, tmp_path / "run")
    assert e.value.key == "human.shared_fraction" and not (tmp_path / "run").exists()


def test_a_crawling_lab_whose_regime_would_be_ignored_is_refused(tmp_path):
    labs = [LabConfig("a", post_fraction=0.5), LabConfig("b", crawl=32, set={"regime": "mix"})]
    with pytest.raises(ConfigError, match="regime=mix would be ignored") as e:
        loop.run(tiny_config(labs=labs), tmp_path / "run")
    assert e.value.key == "labs[1].crawl" and not (tmp_path / "run").exists()


def test_a_lab_teacher_outside_an_ecosystem_is_refused():
    with pytest.raises(ConfigError) as e:
        validate(tiny_config(train=TrainConfig(batch_size=16, target="soft", teacher="lab:a")))
    assert e.value.key == "train.teacher"


def test_the_single_lab_config_is_unchanged():
    from collapse.config import study_id, to_dict

    d = to_dict(tiny_config())
    assert not {"labs", "human", "web"} & d.keys()
    assert study_id(tiny_config()) == study_id(tiny_config(labs=[]))


def test_the_web_takes_new_human_text_from_the_fresh_reserve(tmp_path):
    """On text, round t's new web rows are rows t·h .. (t+1)·h of the whole fresh reserve; a reserve too small
    for every round, or one a lab's regime.fresh also takes, is refused before anything is written."""
    data = TextConfig(path=write_corpus(tmp_path / "corpus.txt"), seq_len=16, fresh_fraction=0.3)
    labs = [LabConfig("a", post_fraction=0.5), LabConfig("b", crawl=32)]
    cfg = tiny_config(data=data, labs=labs, human=HumanConfig(shared_fraction=0.5), web=WebConfig(human_rows=4))
    eco = Ecosystem(cfg, RunDir(tmp_path / "run"))
    eco.open()
    reserve = load_humans(dataclasses.replace(cfg, labs=[], human=HumanConfig(), web=WebConfig()),
                          RunDir(tmp_path / "probe"))[0].fresh
    assert len(reserve) >= 8
    np.testing.assert_array_equal(eco.web._new_human(0, 1), reserve[4:8])
    too_many = dataclasses.replace(cfg, web=WebConfig(human_rows=len(reserve) // cfg.generations + 1))
    fresh_lab = dataclasses.replace(cfg, labs=[LabConfig("a", post_fraction=0.5, set={"regime": "mix",
                                                                                      "regime.fresh": True}), labs[1]])
    for bad, match in ((too_many, "the fresh reserve holds"), (fresh_lab, "lab a's regime.fresh")):
        with pytest.raises(ConfigError, match=match) as e:
            loop.run(bad, tmp_path / "refused")
        assert e.value.key == "web.human_rows" and not (tmp_path / "refused").exists()


def test_a_comparison_holds_the_labs_and_the_ecosystems_own_rows(eco, tmp_path):
    """collapse-report: each lab a condition of its own (its name, its intake and the ecosystem it is part of), and
    the ecosystem's rows a condition whose lab is "*", the pairs' metrics named by their pair (three labs)."""
    from collapse import compare, summary

    _, path = eco
    compare.compare(compare.find_runs([path]), tmp_path)
    rows, _ = summary.read_csv(tmp_path / "summary.csv")
    by_lab = {}
    for row in rows:
        by_lab.setdefault(row["lab.name"], set()).add(row["metric"])
    assert set(by_lab) == {"a", "b", "c", "*"}
    assert {"homogenisation_js", "labs_mean_kl_true", "js_pair[a|b]", "private_gain_ab[b|c]"} <= by_lab["*"]
    assert "kl_true" in by_lab["a"] and "homogenisation_js" not in by_lab["a"] and "kl_true" not in by_lab["*"]
    configs = compare.run_configs(compare.find_runs([path]))
    assert configs[(path / "labs" / "a").resolve()]["ecosystem"] == {"labs": 3, "human.shared_fraction": 0.5,
                                                                     "web.human_rows": 8}


def test_the_certificate_chains_across_labs(eco, tmp_path):
    """b trained on its own and a's samples: its certificate links both labs' generation 0 and verifies from the
    files of both; c's crawled generation holds none (the web's new human rows are in no file): uncertified, not
    tampered, and its rows are not rebuilt. A marker removed from a, or a flipped token in a's samples, breaks
    b's chain, and the problem names a's file."""
    from collapse import certificate
    from collapse.files import load_array, load_json, save_array

    _, path = eco
    shutil.copytree(path, tmp_path / "eco")
    a, b, c = (RunDir(tmp_path / "eco" / "labs" / name) for name in "abc")
    assert set(load_json(b.provenance(1))["certificate"]["links"]) == {"a/gen_0", "b/gen_0"}
    verdict = certificate.verify(b)
    assert not verdict.problems and verdict.certified == {0: 1.0, 1: 1.0}
    crawled = certificate.verify(c)  # uncertified, not tampered
    assert crawled.certified == {0: 1.0, 1: 0.0} and not crawled.problems and len(crawled.uncertified) == 1
    with pytest.raises(DataError, match="crawl"):
        certificate.training_rows(c, 1, 0)  # its human rows; a's posts it crawled are in a's samples:
    posts, a_samples = certificate.training_rows(c, 1, 0, "a/gen_0"), load_array(a.array(0, 0, "samples"))
    assert len(posts) and all((a_samples == row).all(axis=1).any() for row in posts)
    from collapse.audit_runs import origin_of  # how `collapse-audit read --filter training` names a marked corpus

    assert [origin_of(b, a, 0), origin_of(b, b, 0), origin_of(b, RunDir(tmp_path / "elsewhere"), 0)] == \
        ["a/gen_0", "b/gen_0", None]
    (a.gen(0) / "train.done").unlink()  # a marker removed from the chain: named through b's link
    assert any(str(p).endswith("labs/a/gen_000/train.done") for p, _ in certificate.verify(b).problems)
    shutil.rmtree(tmp_path / "eco")
    shutil.copytree(path, tmp_path / "eco")
    samples = load_array(a.array(0, 0, "samples"))
    samples[0, 1] = (samples[0, 1] + 1) % 16
    save_array(a.array(0, 0, "samples"), samples)
    verdict = certificate.verify(b)
    assert verdict.problems[0][0] == a.array(0, 0, "samples") and verdict.certified[1] < 1.0
