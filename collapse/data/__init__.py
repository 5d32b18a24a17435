"""Human data: the `data` group's options, their schemas and validation (here, without JAX), and their sources:
`grammar` (the ground-truth language with exact probabilities), `facts` (the grammar stating the facts of a
known world, `collapse.data.facts`), `text` (local files), `hf` (Hugging Face datasets, offline), tokenized by
`tokenizer`; `human` loads a study's splits (`HumanData`, `load_human`).
"""

from __future__ import annotations

from dataclasses import dataclass

from collapse.checks import check, fraction, non_negative, one_of, positive
from collapse.options import Registered


@dataclass(frozen=True)
class DataConfig(Registered, group="data"):
    """Human data: split once into train / valid / test (and a fresh reserve when a regime needs one)."""

    seq_len: int = 64  # T: tokens per training sequence

    def validate(self) -> None:
        positive(self, "data", "seq_len")

    def vocab_bound(self) -> int:
        """The largest vocabulary the data can have (bpe: the tokenizer may learn fewer tokens; the study checks
        the real size once the tokenizer exists)."""
        raise TypeError(f"unknown data config {self!r}")

    @property
    def has_truth(self) -> bool:
        """Whether the data comes with its exact language (the grammar), which scores and corrects exactly."""
        return False


@dataclass(frozen=True)
class GrammarConfig(DataConfig, option="grammar"):
    """Built-in ground-truth language with exact probabilities (see `collapse.data.grammar`).

    The language itself depends only on `language_seed`, so runs with different `seed`s study the same truth.
    """

    vocab_size: int = 512
    n_states: int = 32
    zipf_exponent: float = 1.1  # emission weights ∝ rank^-exponent
    state_sharpness: float = 2.0  # std of the per-state log-normal jitter of emission weights
    transitions: str = "token"  # next state from the emitted token (token) or from state and token (state_token)
    language_seed: int = 0
    n_train: int = 2048  # sequences
    n_valid: int = 256
    n_test: int = 512

    def validate(self) -> None:
        super().validate()
        positive(self, "data", "vocab_size", "n_states", "n_train", "n_valid", "n_test")
        non_negative(self, "data", "zipf_exponent", "state_sharpness", "language_seed")
        check(self.vocab_size >= 2, "data.vocab_size", f"must be >= 2, got {self.vocab_size}")
        one_of(self.transitions, "data.transitions", ("token", "state_token"))

    def vocab_bound(self) -> int:
        return self.vocab_size

    @property
    def has_truth(self) -> bool:
        return True


# The most automaton states a facts grammar may have (filler states + entities x (1 + relations)): its exact
# tables are states x vocabulary, and the truth's unigram works with a states x states matrix (float64).
MAX_FACT_STATES = 8192


@dataclass(frozen=True)
class FactsConfig(GrammarConfig, option="facts"):
    """The grammar interleaved with statements of a known world (see `collapse.data.facts`): `n_entities`
    entities x `n_relations` relations, each (entity, relation) with one true value among the relation's own
    `n_values` value tokens. A statement is three tokens, entity, relation, value; an entity opens one with
    probability `fact_rate` wherever the filler (the grammar of the remaining tokens, with `n_states` states)
    would emit, entities drawn ∝ rank^-`entity_zipf` (so rare entities are the tail), the relation uniformly.

    `vocab_size` is the whole vocabulary: the filler gets what the entity, relation and value tokens leave.
    Every token keeps probability >= `floor` / vocab_size in every state, so a false statement has a finite
    true log-probability (about log(vocab_size / floor) nats); `floor=0` makes it impossible (-inf).
    """

    vocab_size: int = 512
    n_entities: int = 256
    n_relations: int = 4
    n_values: int = 16  # values per relation, each relation its own tokens
    entity_zipf: float = 1.0  # entity frequencies ∝ rank^-entity_zipf
    fact_rate: float = 0.2  # probability that a filler position opens a statement instead
    floor: float = 1e-6  # every token's least probability, as a share of 1 / vocab_size

    @property
    def knowledge_tokens(self) -> int:
        """Entity, relation and value tokens: the top of the vocabulary."""
        return self.n_entities + self.n_relations + self.n_relations * self.n_values

    def validate(self) -> None:
        super().validate()
        positive(self, "data", "n_entities", "n_relations")
        non_negative(self, "data", "entity_zipf")
        V = self.vocab_size
        check(self.n_relations <= V, "data.n_relations",
              f"more relations ({self.n_relations}) than tokens (data.vocab_size={V})")
        check(self.n_values >= 2, "data.n_values", f"must be >= 2 (a value that can be false), got {self.n_values}")
        check(self.n_values * self.n_relations <= V, "data.n_values",
              f"value sets of {self.n_values} tokens for each of {self.n_relations} relations "
              f"({self.n_values * self.n_relations} tokens) are larger than the vocabulary (data.vocab_size={V})")
        check(self.n_entities <= V, "data.n_entities", f"more entities ({self.n_entities}) than tokens "
              f"(data.vocab_size={V})")
        check(V - self.knowledge_tokens >= 2, "data.vocab_size",
              f"must hold the {self.knowledge_tokens} entity, relation and value tokens and at least 2 filler "
              f"tokens: >= {self.knowledge_tokens + 2}, got {V}")
        states = self.n_states + self.n_entities * (1 + self.n_relations)
        check(states <= MAX_FACT_STATES, "data.n_entities",
              f"the automaton would have {states} states (n_states + n_entities x (1 + n_relations)), at most "
              f"{MAX_FACT_STATES}")
        fraction(self.fact_rate, "data.fact_rate", closed_low=False, closed_high=False)
        fraction(self.floor, "data.floor", closed_high=False)


@dataclass(frozen=True)
class TokenizedConfig(DataConfig):
    """Real text, tokenized into fixed-length blocks after a document-level split."""

    tokenizer: str = "byte"  # byte | bpe | pretrained (model=pretrained sets it: the checkpoint's own)
    bpe_vocab_size: int = 4096
    tokenizer_path: str = ""  # tokenizer=pretrained: the model folder it is read from
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    fresh_fraction: float = 0.0  # held-out reserve for regime=mix fresh=true (a split even when unused)
    max_chars: int = 0  # read at most this many characters (0 = all)

    def validate(self) -> None:
        super().validate()
        one_of(self.tokenizer, "data.tokenizer", ("byte", "bpe", "pretrained"))
        check((self.tokenizer == "pretrained") == bool(self.tokenizer_path), "data.tokenizer_path",
              "names the model folder of data.tokenizer=pretrained (model=pretrained sets both), and only then")
        fraction(self.valid_fraction, "data.valid_fraction", closed_low=False, closed_high=False)
        fraction(self.test_fraction, "data.test_fraction", closed_low=False, closed_high=False)
        check(self.valid_fraction + self.test_fraction < 1, "data.test_fraction",
              "valid_fraction + test_fraction must leave some training data")
        fraction(self.fresh_fraction, "data.fresh_fraction", closed_high=False)
        held_out = self.fresh_fraction + (0 if self.official_splits else self.valid_fraction + self.test_fraction)
        check(held_out < 1, "data.fresh_fraction", "valid_fraction + test_fraction + fresh_fraction must leave "
              f"some training data, got {held_out}")
        non_negative(self, "data", "max_chars")
        if self.tokenizer == "bpe":
            check(self.bpe_vocab_size >= 257, "data.bpe_vocab_size", f"must be >= 257, got {self.bpe_vocab_size}")

    @property
    def official_splits(self) -> bool:
        """Whether the source's own splits are the valid and test splits (the fractions then unused)."""
        return False

    def vocab_bound(self) -> int:
        """(pretrained: unknown until the tokenizer is read, when the study checks the real size)"""
        return {"byte": 256, "bpe": self.bpe_vocab_size}.get(self.tokenizer, 2**31 - 1)


@dataclass(frozen=True)
class TextConfig(TokenizedConfig, option="text"):
    """Local UTF-8 files: a path or glob; plain text, or JSONL with the text in `field`."""

    path: str = ""
    format: str = "auto"  # auto (by extension) | plain | jsonl
    field: str = "text"

    def validate(self) -> None:
        super().validate()
        check(bool(self.path), "data.path", "set the corpus path or glob, e.g. data.path=corpus.txt")
        one_of(self.format, "data.format", ("auto", "plain", "jsonl"))
        check(bool(self.field), "data.field", "must name the JSONL text field")


@dataclass(frozen=True)
class HFConfig(TokenizedConfig, option="hf"):
    """A Hugging Face dataset, loaded offline from a local path or the local cache (needs the `hf` extra)."""

    name: str = ""  # hub name (e.g. wikitext) or a local dataset directory / data file
    subset: str = ""  # the dataset's config name (e.g. wikitext-2-raw-v1)
    split: str = "train"  # the split read (splits=official: the train split)
    text_field: str = "text"
    documents: str = "auto"  # rows (each non-empty row) | wikitext (articles by level-1 headings) | auto
    splits: str = "random"  # random (document-level split of `split`) | official (valid_split, test_split)
    valid_split: str = "validation"
    test_split: str = "test"

    @property
    def official_splits(self) -> bool:
        return self.splits == "official"

    def validate(self) -> None:
        super().validate()
        check(bool(self.name), "data.name", "set the dataset name or local path, e.g. data.name=wikitext")
        check(bool(self.text_field), "data.text_field", "must name the text column")
        one_of(self.documents, "data.documents", ("auto", "rows", "wikitext"))
        one_of(self.splits, "data.splits", ("random", "official"))
        if self.splits == "official":
            for key in ("split", "valid_split", "test_split"):
                check(bool(getattr(self, key)), f"data.{key}", "must name a split of the dataset")
            check(len({self.split, self.valid_split, self.test_split}) == 3, "data.test_split",
                  f"data.split, data.valid_split and data.test_split must differ, got {self.split!r}, "
                  f"{self.valid_split!r}, {self.test_split!r}")
