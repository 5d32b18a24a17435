"""Tokenizers for real text: raw UTF-8 bytes, or byte-level BPE trained on the human train split.

Both map any text to int32 ids and back exactly (`decode(encode(s)) == s`), and decode *any* id sequence
without failing, since a model's samples need not be valid UTF-8: invalid bytes and ids outside
`[0, vocab_size)` become U+FFFD.

File format (one JSON file, written atomically):

    {"type": "byte"}
    {"type": "bpe", "version": 1, "tokenizer": <the Hugging Face `tokenizers` JSON object>}

`fingerprint()` hashes what determines the ids (type, vocabulary and merges), so a run can tell that a
tokenizer file is not the one its data was encoded with.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from collapse.errors import DataError
from collapse.files import atomic_write

BPE_FORMAT_VERSION = 1
_INVALID_BYTE = 0xFF  # never valid in UTF-8: decodes to U+FFFD


def _hash(obj: object) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ byte


class ByteTokenizer:
    """One token per UTF-8 byte: nothing to train, nothing to get wrong."""

    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, ids) -> str:
        ids = np.asarray(ids, dtype=np.int64).ravel()
        ids = np.where((ids < 0) | (ids > 255), _INVALID_BYTE, ids)
        return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(Path(path), (json.dumps({"type": self.kind}) + "\n").encode())

    def fingerprint(self) -> str:
        return _hash({"type": self.kind})


# ------------------------------------------------------------------------------------------------- bpe

# Positions where the ByteLevel (GPT-2) pre-tokenizer always starts a new piece: before a "\n" that is
# followed by a non-space, and before a single space between two non-spaces. Cutting a text there and
# encoding the chunks separately gives exactly the ids of the whole text, but in parallel and without
# the huge per-token offset tables `tokenizers` builds for a single multi-megabyte string.
_CUT = re.compile(r"\n(?=\S)|(?<=\S) (?=\S)")
_CHUNK_CHARS = 1 << 14


def _chunks(text: str, size: int = _CHUNK_CHARS) -> Iterator[str]:
    """`text` in pieces of at least `size` characters, cut only at `_CUT` (one piece if it has no such spot)."""
    start = 0
    while len(text) - start > size:
        m = _CUT.search(text, start + size)
        if m is None:
            break
        yield text[start : m.start()]
        start = m.start()
    yield text[start:]


class BPETokenizer:
    """Byte-level BPE (a Hugging Face `tokenizers.Tokenizer`): every byte is a token, merges on top."""

    kind = "bpe"

    def __init__(self, tok: tokenizers.Tokenizer):
        self.tok = tok
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        # The byte 0xFF token stands in for ids the vocabulary does not have (decodes to U+FFFD).
        self._invalid_id = tok.token_to_id(chr(_INVALID_BYTE))  # ByteLevel maps printable byte 0xFF to "ÿ"

    def encode(self, text: str, chunk_chars: int = _CHUNK_CHARS) -> np.ndarray:
        pieces = list(_chunks(text, chunk_chars))
        encode = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)  # fast: no offsets (>= 0.21)
        encodings = encode(pieces, add_special_tokens=False)
        ids = [np.asarray(e.ids, dtype=np.int32) for e in encodings]
        return np.concatenate(ids) if ids else np.zeros(0, np.int32)

    def decode(self, ids) -> str:
        ids = np.asarray(ids, dtype=np.int64).ravel()
        ids = np.where((ids < 0) | (ids >= self.vocab_size), self._invalid_id, ids)
        return self.tok.decode(ids.tolist(), skip_special_tokens=False)

    def save(self, path: str | os.PathLike) -> None:
        obj = {"type": self.kind, "version": BPE_FORMAT_VERSION, "tokenizer": json.loads(self.tok.to_str())}
        atomic_write(Path(path), (json.dumps(obj, ensure_ascii=False) + "\n").encode())

    def save_pretrained_files(self, folder: str | os.PathLike) -> None:
        """tokenizer.json into a Hugging Face model folder (`collapse-export`)."""
        self.tok.save(str(Path(folder) / "tokenizer.json"))

    def fingerprint(self) -> str:
        model = json.loads(self.tok.to_str())["model"]
        # `tokenizers` has written merges both as "a b" strings and as [a, b] pairs; hash the pairs.
        merges = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in model["merges"]]
        return _hash({"type": self.kind, "vocab": sorted(self.tok.get_vocab().items()), "merges": merges})


def train_bpe(texts: Iterable[str], vocab_size: int) -> BPETokenizer:
    """Train byte-level BPE on `texts`; deterministic, so the same texts give the same vocabulary.

    All 256 bytes are in the vocabulary, so any text encodes; the result has fewer than `vocab_size`
    tokens when the texts run out of pairs to merge.
    """
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator((chunk for text in texts for chunk in _chunks(text)), trainer=trainer)
    return BPETokenizer(tok)


# ------------------------------------------------------------------------------------------ pretrained


class PretrainedTokenizer(BPETokenizer):
    """A pretrained model's own tokenizer (its folder's tokenizer.json, or GPT-2-style vocab.json + merges.txt),
    encoding without its special tokens (the model reads its BOS first anyway). Texts are encoded in chunks
    only where the pre-tokenizer is GPT-2's byte-level regex, for which `_CUT` is exact; else whole."""

    kind = "pretrained"

    def __init__(self, tok: tokenizers.Tokenizer):
        super().__init__(tok)
        pre = json.loads(tok.to_str()).get("pre_tokenizer") or {}
        self.chunked = pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space")

    def encode(self, text: str, chunk_chars: int = _CHUNK_CHARS) -> np.ndarray:
        if self.chunked:
            return super().encode(text, chunk_chars)
        return np.asarray(self.tok.encode(text, add_special_tokens=False).ids, dtype=np.int32)

    def save(self, path: str | os.PathLike) -> None:
        obj = {"type": self.kind, "tokenizer": json.loads(self.tok.to_str())}
        atomic_write(Path(path), (json.dumps(obj, ensure_ascii=False) + "\n").encode())

    def fingerprint(self) -> str:
        return _hash({"type": self.kind, "tokenizer": json.loads(self.tok.to_str())})


def read_pretrained(folder: str | os.PathLike) -> PretrainedTokenizer:
    """The tokenizer of a Hugging Face model folder: tokenizer.json, else vocab.json + merges.txt (byte-level BPE,
    GPT-2's pre-tokenizer and decoder); `DataError` naming the folder if it holds neither."""
    folder = Path(folder)
    try:
        if (folder / "tokenizer.json").is_file():
            return PretrainedTokenizer(tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json")))
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            tok = tokenizers.Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            tok.decoder = decoders.ByteLevel()
            return PretrainedTokenizer(tok)
    except Exception as e:  # tokenizers raises a bare Exception on a malformed file
        raise DataError(folder, f"unreadable tokenizer ({e})") from None
    raise DataError(folder, "holds no tokenizer: tokenizer.json, or vocab.json and merges.txt")


# ----------------------------------------------------------------------------------------------- files

Tokenizer = ByteTokenizer | BPETokenizer | PretrainedTokenizer


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a file written by `save`; `DataError` naming the file if it is missing or corrupt."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "tokenizer file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"corrupt tokenizer file ({e})") from e
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        if obj.get("version") != BPE_FORMAT_VERSION:
            raise DataError(path, f"unsupported bpe tokenizer file version {obj.get('version')!r}")
        try:
            tok = tokenizers.Tokenizer.from_str(json.dumps(obj["tokenizer"]))
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON structure
            raise DataError(path, f"corrupt bpe tokenizer ({e})") from e
        return BPETokenizer(tok)
    if kind == "pretrained":
        try:
            return PretrainedTokenizer(tokenizers.Tokenizer.from_str(json.dumps(obj["tokenizer"])))
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON structure
            raise DataError(path, f"corrupt pretrained tokenizer ({e})") from e
    raise DataError(path, f"corrupt tokenizer file: unknown type {kind!r} (expected 'byte', 'bpe' or 'pretrained')")


def make_tokenizer(name: str, train_texts: Iterable[str], bpe_vocab_size: int, folder: str = "") -> Tokenizer:
    """`data.tokenizer` → a tokenizer; "bpe" is trained on `train_texts` (the human train split only),
    "pretrained" read from the model folder `folder`."""
    if name == "byte":
        return ByteTokenizer()
    if name == "bpe":
        return train_bpe(train_texts, bpe_vocab_size)
    if name == "pretrained":
        return read_pretrained(folder)
    raise ValueError(f"unknown tokenizer {name!r} (expected 'byte' or 'bpe')")
