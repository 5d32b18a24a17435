"""A study's set-up: every replicate's human data, identical across regimes and study lengths, with fresh
rows that no split and no other generation holds; the run directory must hold this study or none."""

import dataclasses

import numpy as np
import pytest

from collapse import regimes
from collapse.run import study
from collapse.data import TextConfig
from collapse.regimes import MixConfig
from collapse.store import RunDir
from tests.helpers import tiny_config, write_corpus


def human_configs(source, tmp_path, fresh_fraction=0.0):
    """The same data under mix fresh=false and fresh=true, with 2 and 10 generations (grammar: a vocabulary
    large enough that two sequences of 16 tokens practically never coincide; text: `fresh_fraction`)."""
    if source == "grammar":
        base = tiny_config(data=dataclasses.replace(tiny_config().data, vocab_size=512))
    else:
        reserve = {"fresh_fraction": fresh_fraction} if fresh_fraction else {}  # the default: 0
        base = tiny_config(data=TextConfig(path=write_corpus(tmp_path / "corpus.txt"), seq_len=16, **reserve))
    return [dataclasses.replace(base, regime=MixConfig(human_fraction=0.1, fresh=fresh), generations=g)
            for fresh in (False, True) for g in (2, 10)]


@pytest.mark.parametrize("source", ["grammar", "text"])
def test_human_train_split_is_the_same_for_any_regime_and_generations(source, tmp_path):
    humans = [study.load_humans(cfg, RunDir(tmp_path / "run"))[0] for cfg in human_configs(source, tmp_path)]
    for human in humans[1:]:
        for split in ("train", "valid", "test"):
            np.testing.assert_array_equal(getattr(human, split), getattr(humans[0], split), err_msg=split)


@pytest.mark.parametrize("source", ["grammar", "text"])
def test_fresh_rows_of_each_generation_are_new_human_data(source, tmp_path):
    """The human rows generation g >= 1 trains on under mix fresh=true are in no split and no other generation."""
    cfg = human_configs(source, tmp_path, fresh_fraction=0.5)[-1]  # fresh=true, 10 generations
    human = study.load_humans(cfg, RunDir(tmp_path / "run"))[0]
    seen = {tuple(row) for split in (human.train, human.valid, human.test) for row in split}
    assert len(seen) == len(human.train) + len(human.valid) + len(human.test)
    n_h = cfg.regime.fresh_per_generation(len(human.train))
    assert n_h == round(0.1 * len(human.train)) > 0
    if source == "grammar":
        assert len(human.fresh) == 9 * n_h  # the rows the study needs, drawn from the truth
    regimes.check_fresh(cfg.regime, cfg.generations, len(human.train), len(human.fresh), 0.5)
    synthetic = np.zeros((len(human.train), 16), np.int32)
    for g in range(1, 10):
        ts = regimes.training_set(cfg.regime, g, human.train, human.fresh, [synthetic] * g, np.random.default_rng(g))
        rows = {tuple(row) for row in ts.tokens[ts.provenance == -1]}
        assert len(rows) == n_h and seen.isdisjoint(rows), f"generation {g}"
        seen |= rows


def test_topk_larger_than_the_learned_bpe_vocabulary_is_refused_before_any_training(tmp_path):
    """The bpe tokenizer may learn fewer tokens than data.bpe_vocab_size: the study checks train.soft_top_k
    against the vocabulary it learned."""
    from collapse.errors import ConfigError

    train = dataclasses.replace(tiny_config().train, target="soft", teacher_probs="topk", soft_top_k=1500)
    cfg = tiny_config(data=TextConfig(path=write_corpus(tmp_path / "corpus.txt", words=["a", "b", "c"]), seq_len=16,
                                      tokenizer="bpe", bpe_vocab_size=2000), train=train)
    with pytest.raises(ConfigError, match=r"train.soft_top_k: must be <= the vocabulary \(\d+ tokens, as the "
                                          r"tokenizer learned it\), got 1500"):
        study.open_study(cfg, RunDir(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
