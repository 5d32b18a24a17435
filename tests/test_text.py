"""Local text: reading and its errors, the document split, blocks, and tokenize_splits."""

import json

import numpy as np
import pytest

from collapse.data import TextConfig, TokenizedConfig
from collapse.errors import DataError
from collapse.data import tokenizer as tokenizer_lib
from collapse.data.text import (
    limit_chars,
    read_documents,
    split_corpus,
    split_documents,
    to_blocks,
    tokenize_splits,
)
from collapse.data.tokenizer import BPETokenizer, ByteTokenizer


def read(path, **kw) -> list[str]:
    return read_documents(TextConfig(path=str(path), **kw))


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def corpus(n_docs: int = 40, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "délta", "東京", "🙂", "the", "of", "and"]
    return [" ".join(rng.choice(words, size=rng.integers(5, 60))) for _ in range(n_docs)]


# ------------------------------------------------------------------------------------------- reading


def test_plain_paragraphs(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("  first paragraph\nsame one \n\n\n second\r\n\r\nthird 東京\n   \n\n", encoding="utf-8")
    assert read(path) == ["first paragraph\nsame one", "second", "third 東京"]


def test_jsonl(tmp_path):
    path = tmp_path / "a.jsonl"
    write_jsonl(path, [{"text": "one", "id": 1}, {"text": "two\n\nlines"}, {"text": "   "}, {"text": "three"}])
    with path.open("a") as f:
        f.write("\n")  # blank lines are skipped
    assert read(path) == ["one", "two\n\nlines", "three"]
    write_jsonl(tmp_path / "b.data", [{"body": "x"}])
    assert read(tmp_path / "b.data", format="jsonl", field="body") == ["x"]
    assert read(tmp_path / "b.data", format="plain") == ['{"body": "x"}']


def test_glob_over_files_sorted_and_recursive(tmp_path):
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "b.txt").write_text("b1\n\nb2")
    (tmp_path / "a.txt").write_text("a1")
    (tmp_path / "sub" / "deep" / "c.txt").write_text("c1")
    write_jsonl(tmp_path / "sub" / "d.jsonl", [{"text": "d1"}])
    assert read(tmp_path / "*.txt") == ["a1", "b1", "b2"]
    assert read(tmp_path / "**" / "*.txt") == ["a1", "b1", "b2", "c1"]
    assert read(tmp_path / "**" / "*") == ["a1", "b1", "b2", "d1", "c1"]  # sub/d.jsonl < sub/deep/c.txt


def test_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "t.txt").write_text("home text")
    assert read("~/t.txt") == ["home text"]


def test_max_chars(tmp_path):
    (tmp_path / "a.txt").write_text("abcd\n\nefgh")
    (tmp_path / "b.txt").write_text("ijkl")
    assert read(tmp_path / "*.txt", max_chars=6) == ["abcd", "ef"]
    assert read(tmp_path / "*.txt", max_chars=0) == ["abcd", "efgh", "ijkl"]
    assert limit_chars(["ab", "cd"], 2) == ["ab"]


def test_invalid_utf8_names_file_and_byte(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good text\n\nbad \xff here")
    with pytest.raises(DataError, match=r"invalid UTF-8 at byte 15") as err:
        read(path)
    assert err.value.path == str(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(DataError, match="empty") as err:
        read(path)
    assert err.value.path == str(path)


def test_empty_jsonl(tmp_path):
    write_jsonl(tmp_path / "e.jsonl", [{"text": ""}])
    with pytest.raises(DataError, match="empty"):
        read(tmp_path / "e.jsonl")


@pytest.mark.parametrize(
    "line, pattern",
    [('{"body": "x"}', "no field 'text'"), ("{broken", "bad JSON"), ('["text"]', "no field 'text'"),
     ('{"text": 3}', "not a string"), ('{"text": "\\ud800"}', "surrogate")],
)
def test_bad_jsonl_line_names_file_and_line(tmp_path, line, pattern):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n")
    with pytest.raises(DataError, match=pattern) as err:
        read(path)
    assert err.value.path == f"{path}:3"


def test_no_match(tmp_path):
    with pytest.raises(DataError, match="no file matches") as err:
        read(tmp_path / "*.txt")
    assert err.value.path == str(tmp_path / "*.txt")
    with pytest.raises(DataError, match="no file matches"):
        read(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="is a directory"):
        read(tmp_path)


# ----------------------------------------------------------------------------------------- splitting


def chars(docs: list[str]) -> int:
    return sum(map(len, docs))


def split(docs, valid, test, rng, fresh=0.0) -> dict[str, list[str]]:
    return split_documents(docs, {"valid": valid, "test": test, "fresh": fresh}, rng)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_fractions_disjoint_deterministic(seed):
    docs = corpus(400, seed=seed)
    parts = split(docs, 0.1, 0.2, np.random.default_rng(seed))
    train, valid, test = parts["train"], parts["valid"], parts["test"]
    total = chars(docs)
    assert chars(valid) / total == pytest.approx(0.1, abs=0.01)
    assert chars(test) / total == pytest.approx(0.2, abs=0.01)
    assert all(train) and all(valid) and all(test) and parts["fresh"] == []
    assert sorted(train + valid + test) == sorted(docs)  # a partition: every document exactly once
    assert split(docs, 0.1, 0.2, np.random.default_rng(seed)) == parts
    assert split(docs, 0.1, 0.2, np.random.default_rng(seed + 100)) != parts


@pytest.mark.parametrize("seed", [0, 1])
def test_split_fresh_reserve_is_a_fourth_disjoint_split(seed):
    docs = corpus(400, seed=seed)
    parts = split(docs, 0.1, 0.1, np.random.default_rng(seed), fresh=0.25)
    assert set(parts) == {"train", "valid", "test", "fresh"}
    assert chars(parts["fresh"]) / chars(docs) == pytest.approx(0.25, abs=0.01)
    assert chars(parts["valid"]) / chars(docs) == pytest.approx(0.1, abs=0.01)
    assert sorted(sum(parts.values(), [])) == sorted(docs)
    # the valid and test splits are those of a split without a reserve: the reserve comes out of train
    plain = split(docs, 0.1, 0.1, np.random.default_rng(seed))
    assert parts["valid"] == plain["valid"] and parts["test"] == plain["test"]
    assert sorted(parts["train"] + parts["fresh"]) == sorted(plain["train"])


def test_split_keeps_original_order_within_splits():
    docs = [f"doc {i:03d}" for i in range(100)]
    for part in split(docs, 0.2, 0.2, np.random.default_rng(0), fresh=0.2).values():
        assert part == sorted(part)


def test_split_falls_back_to_lines():
    docs = ["\n".join(f"line {i} of the only document" for i in range(50))]
    parts = split(docs, 0.1, 0.1, np.random.default_rng(0), fresh=0.1)
    assert all(len(p) > 0 for p in parts.values())
    assert sorted(sum(parts.values(), [])) == sorted(docs[0].split("\n"))
    assert chars(parts["valid"]) / chars(sum(parts.values(), [])) == pytest.approx(0.1, abs=0.03)


def test_split_falls_back_to_characters():
    text = "one single line without any breaks " * 10
    parts = split([text], 0.1, 0.2, np.random.default_rng(0))
    assert parts["valid"][0] + parts["test"][0] + parts["train"][0] == text and parts["fresh"] == []
    assert len(parts["valid"][0]) == round(0.1 * len(text)) and len(parts["test"][0]) == round(0.2 * len(text))
    parts = split([text], 0.1, 0.2, np.random.default_rng(0), fresh=0.3)
    assert parts["valid"][0] + parts["test"][0] + parts["fresh"][0] + parts["train"][0] == text
    assert len(parts["fresh"][0]) == round(0.6 * len(text)) - round(0.3 * len(text))
    with pytest.raises(DataError, match="too small to split into train/valid/test: 2 characters"):
        split(["ab"], 0.1, 0.1, np.random.default_rng(0))
    with pytest.raises(DataError, match="too small to split into train/valid/test/fresh: 3 characters"):
        split(["abc"], 0.1, 0.1, np.random.default_rng(0), fresh=0.1)


def test_split_small_fraction_of_few_long_docs_uses_lines():
    # 5 equal documents: a 2% share rounds to no document, so the lines are split instead
    docs = ["\n".join(f"d{d} line {i}" for i in range(20)) for d in range(5)]
    parts = split(docs, 0.02, 0.02, np.random.default_rng(0))
    assert all(len(parts[p]) > 0 for p in ("train", "valid", "test"))
    assert all("\n" not in line for line in sum(parts.values(), []))


# ----------------------------------------------------------------------------------------- blocks


def test_to_blocks():
    ids = np.arange(10)
    blocks = to_blocks(ids, 3)
    assert blocks.shape == (3, 3) and blocks.dtype == np.int32
    assert blocks.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert to_blocks(ids, 11).shape == (0, 11)
    assert to_blocks(np.zeros(0, np.int32), 4).shape == (0, 4)


# ------------------------------------------------------------------------------------- tokenize_splits


def cfg(**kw) -> TokenizedConfig:
    return TokenizedConfig(**{"seq_len": 16, "valid_fraction": 0.1, "test_fraction": 0.1, **kw})


def test_tokenize_splits_byte(tmp_path):
    docs = corpus(200)
    blocks, tok = tokenize_splits(docs, cfg(), np.random.default_rng(0), tmp_path / "tok.json")
    assert isinstance(tok, ByteTokenizer)
    assert set(blocks) == {"train", "valid", "test", "fresh"}
    assert blocks["fresh"].shape == (0, 16)  # data.fresh_fraction 0: an empty reserve
    n_bytes = len("\n\n".join(docs).encode())
    for name, frac in (("train", 0.8), ("valid", 0.1), ("test", 0.1)):
        assert blocks[name].dtype == np.int32 and blocks[name].shape[1] == 16
        assert blocks[name].size == pytest.approx(frac * n_bytes, rel=0.2)
    assert load_kind(tmp_path / "tok.json") == "byte"
    again, _ = tokenize_splits(docs, cfg(), np.random.default_rng(0), tmp_path / "tok.json")
    assert all(np.array_equal(again[k], blocks[k]) for k in blocks)


def load_kind(path) -> str:
    return json.loads(path.read_text())["type"]


def test_tokenize_splits_bpe_trains_on_train_and_reuses_saved(tmp_path, monkeypatch):
    docs = corpus(200)
    path = tmp_path / "tok.json"
    c = cfg(tokenizer="bpe", bpe_vocab_size=300)
    blocks, tok = tokenize_splits(docs, c, np.random.default_rng(0), path)
    assert isinstance(tok, BPETokenizer) and path.exists()
    train = split(docs, 0.1, 0.1, np.random.default_rng(0))["train"]
    assert tok.fingerprint() == tokenizer_lib.train_bpe(train, 300).fingerprint()  # train split only

    def no_training(*args, **kwargs):
        raise AssertionError("retrained instead of loading the saved tokenizer")

    monkeypatch.setattr(tokenizer_lib, "train_bpe", no_training)
    again, loaded = tokenize_splits(docs, c, np.random.default_rng(0), path)
    assert loaded.fingerprint() == tok.fingerprint()
    assert all(np.array_equal(again[k], blocks[k]) for k in blocks)


def test_tokenize_splits_wrong_kind_of_saved_tokenizer(tmp_path):
    path = tmp_path / "tok.json"
    ByteTokenizer().save(path)
    with pytest.raises(DataError, match="data.tokenizer=bpe") as err:
        tokenize_splits(corpus(50), cfg(tokenizer="bpe", bpe_vocab_size=300), np.random.default_rng(0), path)
    assert err.value.path == str(path)


def test_tokenize_splits_without_path():
    blocks, tok = tokenize_splits(corpus(50), cfg(), np.random.default_rng(0), None)
    assert isinstance(tok, ByteTokenizer) and len(blocks["valid"]) > 0


def test_too_short_for_seq_len():
    docs = corpus(30)  # about 5000 bytes: train has enough for one block of 1000, valid and test do not
    with pytest.raises(DataError, match=r"data.seq_len=1000: the valid split has \d+ tokens, needs at least 1000"):
        tokenize_splits(docs, cfg(seq_len=1000), np.random.default_rng(0), None)
    with pytest.raises(DataError, match=r"data.seq_len=100000: the train split"):
        tokenize_splits(docs, cfg(seq_len=100_000), np.random.default_rng(0), None)


def test_tokenize_splits_fresh_reserve(tmp_path):
    docs = corpus(300)
    c = cfg(fresh_fraction=0.2, tokenizer="bpe", bpe_vocab_size=300)
    blocks, tok = tokenize_splits(docs, c, np.random.default_rng(0), None)
    parts = split(docs, 0.1, 0.1, np.random.default_rng(0), fresh=0.2)
    assert tok.fingerprint() == tokenizer_lib.train_bpe(parts["train"], 300).fingerprint()  # not the reserve
    for name in ("train", "fresh"):
        np.testing.assert_array_equal(blocks[name], to_blocks(tok.encode("\n\n".join(parts[name])), 16))
    assert len(blocks["fresh"]) > 0
    with pytest.raises(DataError, match="the fresh split has .* or a larger data.fresh_fraction"):
        tokenize_splits(docs, cfg(fresh_fraction=0.0005, seq_len=200), np.random.default_rng(0), None)


def test_tokenize_given_splits_carves_the_reserve_from_train():
    given = {"train": corpus(200, seed=1), "valid": corpus(20, seed=2), "test": corpus(20, seed=3)}
    parts = split_corpus(given, cfg(fresh_fraction=0.3), np.random.default_rng(0))
    assert parts["valid"] == given["valid"] and parts["test"] == given["test"]
    assert sorted(parts["train"] + parts["fresh"]) == sorted(given["train"])
    assert chars(parts["fresh"]) / chars(given["train"]) == pytest.approx(0.3, abs=0.02)
    blocks, tok = tokenize_splits(given, cfg(), np.random.default_rng(0), None)
    np.testing.assert_array_equal(blocks["test"], to_blocks(tok.encode("\n\n".join(given["test"])), 16))
    assert blocks["fresh"].shape == (0, 16)
