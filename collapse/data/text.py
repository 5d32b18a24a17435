"""Real text → token blocks: read documents, split them train/valid/test, tokenize, cut into sequences.

    read_documents(cfg)          local files (a path or glob; plain text or JSONL) → documents
    split_documents(docs, ...)   random document-level split by character share
    tokenize_splits(docs, ...)   split, build the tokenizer on train only, encode → {split: [N, T] int32}

The splits are train, valid, test and fresh (the reserve regime=mix fresh=true draws from; empty when
data.fresh_fraction is 0). `tokenize_splits` takes plain `list[str]` (or given splits), so every source
(`collapse.data.hf` too) shares it.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import numpy as np

from collapse.data import TextConfig, TokenizedConfig
from collapse.errors import DataError
from collapse.data import tokenizer as tokenizer_lib
from collapse.data.tokenizer import Tokenizer

SPLITS = ("train", "valid", "test", "fresh")
DOC_SEPARATOR = "\n\n"
_BLANK_LINE = re.compile(r"\n\s*\n")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


# ------------------------------------------------------------------------------------------- reading


def limit_chars(docs: list[str], max_chars: int) -> list[str]:
    """The first `max_chars` characters of `docs` in order (0 = all); the last document may be cut."""
    if max_chars <= 0:
        return docs
    out, left = [], max_chars
    for doc in docs:
        if left <= 0:
            break
        out.append(doc[:left])
        left -= len(out[-1])
    return out


def match_files(pattern: str) -> list[Path]:
    """A path or glob (`~` expanded, `**` recursive) → the files it names, sorted."""
    pattern = os.path.expanduser(pattern)
    if glob.has_magic(pattern):
        files = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(pattern):
        raise DataError(pattern, "is a directory; give a file or a glob such as dir/**/*.txt")
    else:
        files = [pattern] if os.path.isfile(pattern) else []
    if not files:
        raise DataError(pattern, "no file matches")
    return [Path(f) for f in files]


def _read_utf8(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(path, f"cannot read ({e.strerror or e})") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, f"invalid UTF-8 at byte {e.start}") from None


def parse_plain(text: str) -> list[str]:
    """Paragraphs separated by blank lines, stripped; empty ones dropped."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def parse_jsonl(text: str, field: str, where: str) -> list[str]:
    """One JSON object per line, the document in `field`; blank lines and blank texts are skipped."""
    docs = []
    for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        loc = f"{where}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(loc, f"bad JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(record, dict) or field not in record:
            keys = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
            raise DataError(loc, f"no field {field!r} (found: {keys}); set data.field")
        value = record[field]
        if not isinstance(value, str):
            raise DataError(loc, f"field {field!r} is {type(value).__name__}, not a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(loc, f"field {field!r} holds a lone surrogate escape (not valid Unicode)") from None
        if value.strip():
            docs.append(value)
    return docs


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "jsonl" if path.suffix.lower() in _JSONL_SUFFIXES else "plain"


def read_file(path: Path, fmt: str = "auto", field: str = "text") -> list[str]:
    """The documents of one file; `DataError` naming it if it is not UTF-8, malformed or has no text."""
    text = _read_utf8(path)
    if _format_of(path, fmt) == "jsonl":
        docs = parse_jsonl(text, field, str(path))
    else:
        docs = parse_plain(text)
    if not docs:
        raise DataError(path, "empty (no text)")
    return docs


def read_documents(cfg: TextConfig) -> list[str]:
    """All documents of `cfg.path` in file order, up to `cfg.max_chars` characters (0 = all)."""
    docs, total = [], 0
    for path in match_files(cfg.path):
        new = read_file(path, cfg.format, cfg.field)
        docs += new
        total += sum(map(len, new))
        if 0 < cfg.max_chars <= total:
            break
    return limit_chars(docs, cfg.max_chars)


# ----------------------------------------------------------------------------------------- splitting


def held_out_shares(cfg: TokenizedConfig) -> dict[str, float]:
    """Character shares of the held-out splits, in cutting order; train takes the rest."""
    return {"valid": cfg.valid_fraction, "test": cfg.test_fraction, "fresh": cfg.fresh_fraction}


def _split_units(units: list[str], shares: dict[str, float], rng: np.random.Generator) -> dict[str, list[str]] | None:
    """Shuffle `units`; the held-out splits (in `shares` order), then train take consecutive runs of roughly
    their share of characters (a unit goes to the split whose range holds its middle character). None if
    train or a split with a positive share is empty. Each split keeps its units in their original order."""
    if len(units) < 1 + sum(share > 0 for share in shares.values()):
        return None
    names = [*shares, "train"]
    order = rng.permutation(len(units))
    lengths = np.array([len(units[i]) for i in order], dtype=np.float64)
    ends = np.cumsum(lengths)
    cuts = np.cumsum(list(shares.values())) * ends[-1]
    which = np.searchsorted(cuts, ends - lengths / 2)  # index into names
    parts = {name: np.sort(order[which == k]) for k, name in enumerate(names)}
    if any(len(parts[n]) == 0 for n in names if n == "train" or shares[n] > 0):
        return None
    return {name: [units[i] for i in parts[name]] for name in SPLITS if name in parts}


def _split_chars(docs: list[str], shares: dict[str, float]) -> dict[str, list[str]]:
    """The text (documents joined by a blank line) cut into contiguous character ranges: the held-out splits
    in `shares` order, then train; each split with a positive share gets at least one character."""
    text = DOC_SEPARATOR.join(docs)
    n = len(text)
    positive = [name for name, share in shares.items() if share > 0]
    if n < len(positive) + 1:
        raise DataError("corpus", f"too small to split into {'/'.join(['train', *positive])}: {n} characters")
    out, start, total = {}, 0, 0.0
    for name, share in shares.items():
        total += share
        end = start
        if share > 0:
            later = len(positive) - positive.index(name) - 1  # splits after this one that need a character
            end = min(max(start + 1, round(total * n)), n - later - 1)
        out[name] = [text[start:end]] if end > start else []
        start = end
    return {"train": [text[start:]], **out}


def split_documents(docs: list[str], shares: dict[str, float], rng: np.random.Generator) -> dict[str, list[str]]:
    """Random document-level split: {"train": ..., <held-out split>: ...} with about `shares` of the characters
    (e.g. {"valid": 0.05, "test": 0.05, "fresh": 0.1}; train takes the rest).

    Documents are shuffled with `rng` and cut where the running character count crosses each share, so no
    document is in two splits. A split with share 0 is empty. If that leaves train or a split with a positive
    share empty (too few documents, or documents too long for a small share), the documents are broken into
    their non-blank lines and split the same way; failing that, the text (documents joined by a blank line)
    is cut into contiguous character ranges in `shares` order, train last. Deterministic given `rng`'s state.
    """
    for units in (docs, [line for doc in docs for line in doc.split("\n") if line.strip()]):
        parts = _split_units(units, shares, rng)
        if parts is not None:
            return parts
    return _split_chars(docs, shares)


def to_blocks(ids: np.ndarray, seq_len: int) -> np.ndarray:
    """Non-overlapping `[N, seq_len]` int32 blocks of a 1-D token stream; the remainder is dropped."""
    ids = np.asarray(ids, dtype=np.int32)
    if ids.ndim != 1:
        raise ValueError(f"expected a 1-D token stream, got shape {ids.shape}")
    n = len(ids) // seq_len
    return ids[: n * seq_len].reshape(n, seq_len).copy()


# ---------------------------------------------------------------------------------------- tokenizing


def _tokenizer_for(cfg: TokenizedConfig, train_docs: list[str], path: Path | None) -> Tokenizer:
    """Reuse the tokenizer at `path` if there is one (it must be of kind `cfg.tokenizer`), else build it
    from the train split and save it there."""
    if path is not None and Path(path).exists():
        tok = tokenizer_lib.load_tokenizer(path)
        if tok.kind != cfg.tokenizer:
            raise DataError(path, f"holds a {tok.kind} tokenizer, but data.tokenizer={cfg.tokenizer}")
        return tok
    tok = tokenizer_lib.make_tokenizer(cfg.tokenizer, train_docs, cfg.bpe_vocab_size, cfg.tokenizer_path)
    if path is not None:
        tok.save(path)
    return tok


def split_corpus(docs: list[str] | dict[str, list[str]], cfg: TokenizedConfig,
                 rng: np.random.Generator) -> dict[str, list[str]]:
    """The documents of each split in `SPLITS`. `docs` is either every document (split at random by the shares
    of `cfg`) or given splits {"train", "valid", "test"} (a dataset's official ones), whose train split then
    yields the fresh reserve by `cfg.fresh_fraction` (document level)."""
    if isinstance(docs, dict):
        return {**docs, **split_documents(docs["train"], {"fresh": cfg.fresh_fraction}, rng)}
    return split_documents(docs, held_out_shares(cfg), rng)


def tokenize_splits(
    docs: list[str] | dict[str, list[str]], cfg: TokenizedConfig, rng: np.random.Generator,
    tokenizer_path: Path | None
) -> tuple[dict[str, np.ndarray], Tokenizer]:
    """Split `docs` (see `split_corpus`), get the tokenizer (trained on train only, or loaded from
    `tokenizer_path`), and encode each split — its documents joined by a blank line — into
    `[N, data.seq_len]` blocks. Every split must hold a block, except an unused reserve (fresh_fraction 0)."""
    parts = split_corpus(docs, cfg, rng)
    tok = _tokenizer_for(cfg, parts["train"], tokenizer_path)
    blocks = {}
    for name in SPLITS:
        ids = tok.encode(DOC_SEPARATOR.join(parts[name]))
        blocks[name] = to_blocks(ids, cfg.seq_len)
        if len(blocks[name]) == 0 and not (name == "fresh" and cfg.fresh_fraction == 0):
            hint = "use more text or a shorter data.seq_len"
            if name == "fresh" or (name != "train" and not isinstance(docs, dict)):
                hint += f", or a larger data.{name}_fraction"
            raise DataError("corpus", f"too short for data.seq_len={cfg.seq_len}: the {name} split has "
                                      f"{len(ids)} tokens, needs at least {cfg.seq_len}; {hint}")
    return blocks, tok
