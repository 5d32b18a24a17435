"""A study's human data: load a source once, split it into train / valid / test (+ a fresh reserve), as token
blocks (`HumanData`, `load_human`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from collapse.data import DataConfig, FactsConfig, GrammarConfig, HFConfig, TextConfig
from collapse.rng import LAB_STREAM, human_key, numpy_rng


@dataclass
class HumanData:
    train: np.ndarray  # [N, T] int32
    valid: np.ndarray
    test: np.ndarray
    fresh: np.ndarray  # [F, T] never trained on until regime=mix fresh=true draws it (F may be 0)
    # grammar: generation g's rows are (g-1)*n_h .. g*n_h; text: the data.fresh_fraction split
    vocab_size: int
    tokenizer: Any = None  # text sources: the tokenizer (decode for byte-level metrics); grammar: None
    truth: Any = None  # grammar: the exact language (collapse.data.grammar.Grammar)
    shared: int | None = None  # a lab's share of an ecosystem's data: its first this many train rows are every lab's
    facts: Any = None  # data=facts: the world the language states (collapse.data.facts.World)

    def splits(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "valid": self.valid, "test": self.test, "fresh": self.fresh}


def per_replicate(data: DataConfig) -> bool:
    """Whether every replicate draws its own human data: on the grammar (whose truth is unlimited) it does,
    so the replicate spread includes the sampling noise of the human data, as in the analytic families; a
    text corpus is one sample, split once per seed and shared by the seed's replicates."""
    return data.has_truth


def load_human(d: DataConfig, seed: int, generations: int, fresh_per_generation: Callable[[int], int] | None = None,
               tokenizer_path: Path | None = None, replicate: int = 0, lab: int = 0) -> HumanData:
    """The human data of a study of `generations` (of replicate `replicate` where `per_replicate(d)`), derived
    from `seed` alone; the train split never depends on the regime or on `generations`.

    The fresh reserve (regime=mix fresh=true): for the grammar, generation g = 1..generations-1 gets its own
    `fresh_per_generation(n_train)` new sequences of the truth (key fold_in(fold_in(human_key, 3), g)), so more
    generations only append rows; for text, the fixed `data.fresh_fraction` split of the corpus.
    The grammar's replicate r draws from key fold_in(human_key(seed), r); lab k >= 1 of an ecosystem draws its
    own fresh rows (the fresh key with the lab folded in, collapse.rng). `tokenizer_path` (text sources) is
    where a BPE tokenizer is saved once and reused on resume. Raises
    DataError naming the file for unusable input.
    """
    key = human_key(seed)
    if isinstance(d, GrammarConfig):
        from collapse.data import facts, grammar

        key = jax.random.fold_in(key, replicate)  # replicate r's own sample of the truth

        truth = grammar.make_grammar(d)
        draw = lambda k, n: np.asarray(grammar.sample(truth, k, n, d.seq_len))  # noqa: E731
        n_h = fresh_per_generation(d.n_train) if fresh_per_generation else 0
        fresh_key = jax.random.fold_in(key, 3)
        if lab:
            fresh_key = jax.random.fold_in(jax.random.fold_in(fresh_key, LAB_STREAM), lab)
        fresh = [draw(jax.random.fold_in(fresh_key, g), n_h) for g in range(1, generations)] if n_h else []
        return HumanData(draw(jax.random.fold_in(key, 0), d.n_train), draw(jax.random.fold_in(key, 1), d.n_valid),
                         draw(jax.random.fold_in(key, 2), d.n_test),
                         np.concatenate([np.zeros((0, d.seq_len), np.int32), *fresh]), d.vocab_size, truth=truth,
                         facts=facts.make_world(d) if isinstance(d, FactsConfig) else None)

    from collapse.data import text

    if isinstance(d, TextConfig):
        docs = text.read_documents(d)
    elif isinstance(d, HFConfig):
        from collapse.data.hf import read_documents_hf

        docs = read_documents_hf(d)  # official splits: {"train", "valid", "test"}
    else:
        raise TypeError(f"unknown data source {d!r}")
    splits, tokenizer = text.tokenize_splits(docs, d, numpy_rng(key), tokenizer_path)
    return HumanData(splits["train"], splits["valid"], splits["test"], splits["fresh"], tokenizer.vocab_size,
                     tokenizer=tokenizer)


@dataclass(frozen=True)
class Seat:
    """A lab's place in an ecosystem: lab `index` of `labs`, which share `shared_fraction` of the human train split."""

    index: int
    labs: int
    shared_fraction: float

    def rows(self, n: int) -> np.ndarray:
        """The lab's rows of a split of n: the first round(shared_fraction · n) (every lab's) and the index-th of
        `labs` nearly equal contiguous parts of the rest (its own). The train split is already a random draw,
        so contiguous parts are random subsets."""
        shared = int(round(self.shared_fraction * n))
        bounds = shared + np.linspace(0, n - shared, self.labs + 1).round().astype(int)
        return np.r_[np.arange(shared), np.arange(bounds[self.index], bounds[self.index + 1])]

    def segment(self, human: HumanData) -> HumanData:
        """The lab's human data: its rows of the train split (`rows`) and, on text, its part of the fresh reserve
        (the grammar draws each lab's fresh rows, `load_human`'s `lab`); valid and test are every lab's."""
        fresh = human.fresh if human.truth is not None else human.fresh[Seat(self.index, self.labs, 0.0).rows(
            len(human.fresh))]
        return dataclasses.replace(human, train=human.train[self.rows(len(human.train))], fresh=fresh,
                                   shared=int(round(self.shared_fraction * len(human.train))))
