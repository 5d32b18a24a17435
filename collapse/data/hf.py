"""Hugging Face datasets as documents, always offline: a run never downloads.

Rows become documents by `data.documents` (`group_rows`): each row (rows), or wikitext articles (all rows
from one level-1 heading " = Title = " to the next); auto picks wikitext for a dataset named *wikitext*.
`data.splits=official` takes train / valid / test from the dataset's own splits instead of splitting
`data.split` at random.

`data.name` is, in order of precedence:
  1. a local directory written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (`load_from_disk`;
     `data.split` picks from a DatasetDict) — any other local directory is read as a folder of data files;
  2. a local data file (.txt one row per line, .json/.jsonl, .csv, .parquet), read as split "train";
  3. a hub name (with `data.subset` as its config), which must already be in the local cache.

Needs the optional `datasets` package (`uv sync --extra hf`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from collapse.data import HFConfig
from collapse.errors import ConfigError, DataError
from collapse.data.text import limit_chars

_BUILDERS = {".txt": "text", ".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
_SAVED_MARKERS = ("dataset_dict.json", "state.json")  # written by DatasetDict / Dataset.save_to_disk
_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_OFFLINE_FLAGS = (("huggingface_hub.constants", "HF_HUB_OFFLINE"),
                  ("datasets.config", "HF_HUB_OFFLINE"), ("datasets.config", "HF_DATASETS_OFFLINE"))
_WIKITEXT_HEADING = re.compile(r"^ = [^=].* = \n?$")  # a level-1 heading row of wikitext's raw format


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise ConfigError("data", "data=hf needs the optional `datasets` package: run `uv sync --extra hf` "
                          "(or `pip install 'collapse[hf]'`)") from None
    return datasets


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Force Hugging Face offline mode for the block, then restore it.

    `datasets` and `huggingface_hub` read HF_*_OFFLINE once, at import, into module constants, so setting
    the environment is not enough once they are imported: set both the constants and the environment.
    """
    saved_env = {k: os.environ.get(k) for k in _OFFLINE_ENV}
    saved_flags = [(mod, attr, getattr(sys.modules[mod], attr)) for mod, attr in _OFFLINE_FLAGS
                   if hasattr(sys.modules.get(mod), attr)]
    os.environ.update({k: "1" for k in _OFFLINE_ENV})
    for mod, attr, _ in saved_flags:
        setattr(sys.modules[mod], attr, True)
    try:
        yield
    finally:
        for mod, attr, value in saved_flags:
            setattr(sys.modules[mod], attr, value)
        for k, value in saved_env.items():
            if value is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = value


def _load(cfg: HFConfig, datasets, split: str, key: str):
    """Split `split` of `cfg.name` as a `datasets.Dataset` (see the module docstring for the resolution order);
    `key` is the config key naming that split."""
    name = cfg.name
    path = Path(os.path.expanduser(name))
    if path.is_dir() and any((path / m).exists() for m in _SAVED_MARKERS):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(path, f"no split {split!r}; available: {', '.join(loaded)} (set {key})")
            return loaded[split]
        if key != "data.split":
            raise DataError(path, f"is one dataset without named splits, so it has no split {split!r} "
                                  "(data.splits=official needs a DatasetDict; use data.splits=random)")
        return loaded
    if path.is_dir():
        return datasets.load_dataset(str(path), split=split)
    if path.is_file():
        builder = _BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataError(path, f"unsupported data file type {path.suffix!r} (use {', '.join(_BUILDERS)})")
        return datasets.load_dataset(builder, data_files=str(path), split=split)
    try:
        return datasets.load_dataset(name, cfg.subset or None, split=split)
    except (ConnectionError, FileNotFoundError) as e:  # DatasetNotFoundError is a FileNotFoundError
        subset = f", {cfg.subset!r}" if cfg.subset else ""
        raise DataError(name, f"not a local path, and not in the local Hugging Face cache (runs are offline). "
                              f"Download it first, with network access: python -c \"import datasets; "
                              f"datasets.load_dataset({name!r}{subset})\"  [{type(e).__name__}: {e}]") from e


def document_rule(cfg: HFConfig) -> str:
    """`data.documents` resolved: auto is wikitext when the dataset's name or subset contains "wikitext"."""
    if cfg.documents != "auto":
        return cfg.documents
    return "wikitext" if "wikitext" in f"{cfg.name} {cfg.subset}".lower() else "rows"


def group_rows(rows: list[str], rule: str) -> list[str]:
    """Rows (in dataset order) → documents.

    rows: each row with text is a document. wikitext: an article is a level-1 heading row (" = Title = \\n";
    level 2 " = = Section = = \\n" stays inside) and every row up to the next one, concatenated as is (rows
    are lines ending in a newline, empty rows the blank lines between them); rows before the first heading
    form one document. Documents without text are dropped.
    """
    if rule == "rows":
        return [row for row in rows if row.strip()]
    docs, current = [], []
    for row in rows:
        if _WIKITEXT_HEADING.match(row) and current:
            docs.append("".join(current))
            current = []
        current.append(row)
    docs.append("".join(current))
    return [doc for doc in docs if doc.strip()]


def _read_split(cfg: HFConfig, datasets, split: str, key: str, max_chars: int) -> list[str]:
    """The documents of one split in dataset order, up to `max_chars` characters (0 = all)."""
    try:
        ds = _load(cfg, datasets, split, key)
    except ValueError as e:  # e.g. an unknown split or subset; DataError (a ValueError) passes through
        if isinstance(e, DataError):
            raise
        raise DataError(cfg.name, str(e)) from e
    field = cfg.text_field
    if field not in ds.column_names:
        raise DataError(cfg.name, f"no column {field!r}; available columns: {', '.join(ds.column_names)} "
                                  "(set data.text_field)")
    dtype = getattr(ds.features[field], "dtype", None)
    if dtype not in ("string", "large_string"):
        raise DataError(cfg.name, f"column {field!r} holds {ds.features[field]}, not text")
    rows, total = [], 0
    for batch in ds.select_columns([field]).iter(batch_size=1024):
        new = [t or "" for t in batch[field]]
        rows += new
        total += sum(len(t) for t in new if t.strip())
        if 0 < max_chars <= total:
            break
    docs = group_rows(rows, document_rule(cfg))
    if not docs:
        raise DataError(cfg.name, f"empty (no text in column {field!r} of split {split!r})")
    return limit_chars(docs, max_chars)


def read_documents_hf(cfg: HFConfig) -> list[str] | dict[str, list[str]]:
    """The documents of split `cfg.split` (rows grouped by `data.documents`), up to `cfg.max_chars` characters.

    With `data.splits=official`: {"train", "valid", "test"} from the dataset's splits `data.split`,
    `data.valid_split` and `data.test_split` (`max_chars` limits train only; valid and test are read whole).
    """
    datasets = _import_datasets()
    with offline():
        if cfg.splits != "official":
            return _read_split(cfg, datasets, cfg.split, "data.split", cfg.max_chars)
        named = (("train", cfg.split, "data.split"), ("valid", cfg.valid_split, "data.valid_split"),
                 ("test", cfg.test_split, "data.test_split"))
        return {name: _read_split(cfg, datasets, split, key, cfg.max_chars if name == "train" else 0)
                for name, split, key in named}
