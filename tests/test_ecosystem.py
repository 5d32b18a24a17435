"""Several labs in one study (docs/ecosystems.md): a lab alone is the single-lab study, W and the web add up to
their rows, a rival's model teaches, the between-lab measures keep their identities, resume is exact, and a
bad ecosystem is refused before any compute."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from collapse import lineage
from collapse.config import TrainConfig
from collapse.data.human import Seat
from collapse.errors import ConfigError
from collapse.labs import HumanConfig, LabConfig, WebConfig
from collapse.metrics import ecosystem
from collapse.run import loop
from collapse.run.pools import allocate
from collapse.validate import validate
from tests.helpers import assert_same, outputs, tiny_config

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


@pytest.fixture(scope="module")
def eco(tmp_path_factory):
    path = tmp_path_factory.mktemp("eco") / "run"
    cfg = tiny_config(labs=LABS, human=HumanConfig(shared_fraction=0.5), web=WebConfig(human_rows=8))
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


def test_the_chain_of_an_example_crosses_labs(eco):
    _, path = eco
    origins = np.load(path / "labs" / "b" / "gen_001" / "rep_00" / "train_lab.npy")
    row = int(np.flatnonzero(origins == 0)[0])  # a row of b's training set that a sampled
    lines = lineage.chain(path / "labs" / "b", 1, row)
    assert "of lab a's generation 0" in lines[1] and lines[2] == "  labels: a/soft_gen_0"
    assert any(line.startswith("  lab a's generation 0") for line in lines) and lines[-1].endswith("ends here")


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
        # Jensen: the mixture's KL from the truth is at most the labs' mean KL (same test rows, same positions)
        mean_kl = np.mean([_value(_rows(path, g, lab), "kl_true") for lab in "abc"])
        assert _value(whole, "kl_true_mixture") <= mean_kl + 1e-6
    assert "## The ecosystem" in (path / "report.md").read_text()


def test_measures_of_identical_labs():
    """Two copies of one model: no divergence, full overlap, and the mixture is the model itself."""
    x = np.random.default_rng(0).integers(0, 8, (20, 12))
    assert ecosystem.bigram_overlap(x, x, 8) == 1.0
    lp = np.random.default_rng(1).normal(-20, 2, 50)
    truth = lp + 3.0
    assert ecosystem.mixture_kl(truth, np.stack([lp, lp]), 12) == pytest.approx(3.0 / 12)


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


def test_a_lab_teacher_outside_an_ecosystem_is_refused():
    with pytest.raises(ConfigError) as e:
        validate(tiny_config(train=TrainConfig(batch_size=16, target="soft", teacher="lab:a")))
    assert e.value.key == "train.teacher"


def test_the_single_lab_config_is_unchanged():
    from collapse.config import study_id, to_dict

    d = to_dict(tiny_config())
    assert not {"labs", "human", "web"} & d.keys()
    assert study_id(tiny_config()) == study_id(tiny_config(labs=[]))
