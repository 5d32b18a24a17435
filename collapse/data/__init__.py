"""Human data: load a source once, split it into train / valid / test (+ a fresh reserve), as token blocks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from collapse.config import Config, GrammarConfig, HFConfig, TextConfig
from collapse.rng import human_key, numpy_rng


@dataclass
class HumanData:
    train: np.ndarray  # [N, T] int32
    valid: np.ndarray
    test: np.ndarray
    fresh: np.ndarray  # [F, T] never trained on until regime=mix fresh=true draws it (F may be 0)
    vocab_size: int
    tokenizer: Any = None  # text sources: the tokenizer (decode for byte-level metrics); grammar: None
    truth: Any = None  # grammar: the exact language (collapse.data.grammar.Grammar)

    def splits(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "valid": self.valid, "test": self.test, "fresh": self.fresh}


def load_human(cfg: Config, n_fresh: int | None = None, tokenizer_path: Path | None = None) -> HumanData:
    """The human data of a study, derived from `cfg.seed` alone.

    `n_fresh(n_train)` sequences are held out as the fresh reserve: sampled anew for the grammar, carved
    out of the train split for text. `tokenizer_path` (text sources) is where a BPE tokenizer is saved
    once and reused on resume. Raises DataError naming the file for unusable input.
    """
    d = cfg.data
    key = human_key(cfg.seed)
    if isinstance(d, GrammarConfig):
        from collapse.data import grammar

        truth = grammar.make_grammar(d)
        f = n_fresh(d.n_train) if n_fresh else 0
        draw = lambda i, n: np.asarray(grammar.sample(truth, jax.random.fold_in(key, i), n, d.seq_len))  # noqa: E731
        return HumanData(draw(0, d.n_train), draw(1, d.n_valid), draw(2, d.n_test),
                         draw(3, f) if f else np.zeros((0, d.seq_len), np.int32), d.vocab_size, truth=truth)

    from collapse.data import text

    if isinstance(d, TextConfig):
        docs = text.read_documents(d)
    elif isinstance(d, HFConfig):
        from collapse.data.hf import read_documents_hf

        docs = read_documents_hf(d)
    else:
        raise TypeError(f"unknown data source {d!r}")
    splits, tokenizer = text.tokenize_splits(docs, d, numpy_rng(key), tokenizer_path)
    train = splits["train"]
    f = n_fresh(len(train)) if n_fresh else 0
    order = numpy_rng(jax.random.fold_in(key, 1)).permutation(len(train))
    fresh, train = train[order[:f]], train[np.sort(order[f:])]
    return HumanData(train, splits["valid"], splits["test"], fresh, tokenizer.vocab_size, tokenizer=tokenizer)
