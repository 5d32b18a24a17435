"""Hugging Face loader: saved datasets and local data files load; errors are clear; nothing goes online."""

import json
import os
import socket
import time

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from collapse.data import HFConfig
from collapse.errors import DataError
from collapse.data.human import load_human  # noqa: E402
from collapse.data.hf import document_rule, group_rows, read_documents_hf  # noqa: E402
from collapse.data.text import to_blocks  # noqa: E402

ROWS = {"text": ["first doc", "", "second 東京", "   ", "third"], "label": [0, 1, 2, 3, 4]}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Fail any socket connection, and keep the datasets cache inside tmp_path."""
    attempts = []

    def refuse(*args):
        attempts.append(args)
        raise OSError(f"test: network access refused {args[-1]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    yield
    assert attempts == []


def read(name, **kw) -> list[str]:
    return read_documents_hf(HFConfig(name=str(name), **kw))


def test_saved_dataset(tmp_path):
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    assert read(tmp_path / "ds") == ["first doc", "second 東京", "third"]  # empty strings dropped
    assert read(tmp_path / "ds", max_chars=12) == ["first doc", "sec"]


def test_saved_dataset_dict(tmp_path):
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS),
                               "validation": datasets.Dataset.from_dict({"text": ["held out"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read(tmp_path / "dd", split="validation") == ["held out"]
    with pytest.raises(DataError, match="no split 'test'; available: train, validation"):
        read(tmp_path / "dd", split="test")


def test_local_jsonl_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"body": t}) + "\n" for t in ROWS["text"]), encoding="utf-8")
    assert read(path, text_field="body") == ["first doc", "second 東京", "third"]


def test_local_txt_file_is_one_row_per_line(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("line one\n\nline two\n", encoding="utf-8")
    assert read(path) == ["line one", "line two"]


def test_missing_column(tmp_path):
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="no column 'content'; available columns: text, label"):
        read(tmp_path / "ds", text_field="content")
    with pytest.raises(DataError, match="column 'label' holds"):
        read(tmp_path / "ds", text_field="label")


def test_empty_dataset(tmp_path):
    datasets.Dataset.from_dict({"text": ["", "  "]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match="empty"):
        read(tmp_path / "ds")


def test_hub_name_not_in_cache_fails_fast_offline(monkeypatch):
    # As if the user had not set offline mode: the loader must force it by itself.
    import huggingface_hub.constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    for module, flag in ((datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"),
                         (huggingface_hub.constants, "HF_HUB_OFFLINE")):
        monkeypatch.setattr(module, flag, False)
    start = time.monotonic()
    with pytest.raises(DataError, match="not in the local Hugging Face cache.*[Dd]ownload it first") as err:
        read("collapse-tests/surely-not-cached", subset="tiny")
    assert time.monotonic() - start < 10
    assert err.value.path == "collapse-tests/surely-not-cached"
    assert not datasets.config.HF_HUB_OFFLINE  # offline mode was only forced for the call
    assert not huggingface_hub.constants.HF_HUB_OFFLINE
    assert "HF_HUB_OFFLINE" not in os.environ


# ------------------------------------------------------------------------- wikitext: articles and splits


def article(title: str, n_paragraphs: int) -> list[str]:
    """One article in wikitext's raw row format: heading, blank rows, paragraph lines, a level-2 section."""
    rows = ["", f" = {title} = \n", ""]
    for i in range(n_paragraphs):
        rows += [f" {title} paragraph {i} : " + "words of the article " * (3 + i) + "\n"]
        if i == 0:
            rows += ["", f" = = {title} section = = \n", ""]
    return rows


SPLIT_ARTICLES = {"train": [("Alpha", 6), ("Beta", 3), ("Gamma", 5), ("Delta", 4), ("Epsilon", 6), ("Zeta", 3),
                            ("Eta", 5), ("Theta", 4)],
                  "validation": [("Iota", 3), ("Kappa", 4)], "test": [("Lambda", 5), ("Mu", 3), ("Nu", 4)]}


def rows_of(split: str) -> list[str]:
    return [row for title, n in SPLIT_ARTICLES[split] for row in article(title, n)]


@pytest.fixture
def wikitext(tmp_path):
    """A tiny wikitext-format DatasetDict saved to disk (its name contains "wikitext": documents=auto groups)."""
    path = tmp_path / "my-wikitext-raw"
    datasets.DatasetDict({split: datasets.Dataset.from_dict({"text": rows_of(split)})
                          for split in SPLIT_ARTICLES}).save_to_disk(str(path))
    return path


def test_group_rows_into_wikitext_articles():
    rows = ["", " preamble line \n"] + article("Alpha", 2) + article("Beta", 1)
    docs = group_rows(rows, "wikitext")
    assert docs == [" preamble line \n", "".join(article("Alpha", 2)), "".join(article("Beta", 1))]
    assert " = = Alpha section = = \n" in docs[1]  # a level-2 heading stays inside its article
    assert group_rows(rows, "rows") == [r for r in rows if r.strip()]
    assert group_rows(["", "  ", ""], "wikitext") == []


def test_document_rule():
    assert document_rule(HFConfig(name="wikitext", subset="wikitext-2-raw-v1")) == "wikitext"
    assert document_rule(HFConfig(name="/data/WikiText-103")) == "wikitext"
    assert document_rule(HFConfig(name="imdb")) == "rows"
    assert document_rule(HFConfig(name="wikitext", documents="rows")) == "rows"
    assert document_rule(HFConfig(name="imdb", documents="wikitext")) == "wikitext"


def test_wikitext_articles_stay_in_one_split(wikitext):
    docs = read(wikitext)  # documents=auto: the name holds "wikitext"
    assert docs == ["".join(article(title, n)) for title, n in SPLIT_ARTICLES["train"]]
    assert len(read(wikitext, documents="rows")) == sum(1 for r in rows_of("train") if r.strip())
    cfg = HFConfig(name=str(wikitext), seq_len=16, valid_fraction=0.2, test_fraction=0.2)
    human = load_human(cfg, 0, 5)
    text = {split: bytes(getattr(human, split).ravel().tolist()).decode() for split in ("train", "valid", "test")}
    for title, n in SPLIT_ARTICLES["train"]:  # heading, section and paragraphs all in the same split
        holders = {split for split, t in text.items() if f"{title} paragraph" in t or f" = {title}" in t}
        assert len(holders) == 1, (title, holders)
        (split,) = holders
        assert f" = {title} = \n" in text[split] and f"{title} section" in text[split]


def test_official_splits(wikitext):
    docs = read(wikitext, splits="official")
    for name, split in (("train", "train"), ("valid", "validation"), ("test", "test")):
        assert docs[name] == ["".join(article(title, n)) for title, n in SPLIT_ARTICLES[split]]
        assert "".join(docs[name]) == "".join(rows_of(split))  # exactly the official split's text
    assert read(wikitext, splits="official", max_chars=50)["test"] == docs["test"]  # max_chars: train only
    assert "".join(read(wikitext, splits="official", max_chars=50)["train"]) == "".join(docs["train"])[:50]

    cfg = HFConfig(name=str(wikitext), seq_len=16, splits="official", fresh_fraction=0.25)
    human = load_human(cfg, 0, 5)
    test_ids = human.tokenizer.encode("\n\n".join(docs["test"]))  # byte tokenizer, trained on train only
    np.testing.assert_array_equal(human.test, to_blocks(test_ids, 16))
    np.testing.assert_array_equal(human.valid, to_blocks(human.tokenizer.encode("\n\n".join(docs["valid"])), 16))
    # the fresh reserve comes out of the official train split, whole articles
    train_text = bytes(human.train.ravel().tolist()).decode()
    fresh_text = bytes(human.fresh.ravel().tolist()).decode()
    assert len(human.fresh) > 0 and any(f" = {title} = " in fresh_text for title, _ in SPLIT_ARTICLES["train"])
    for title, _ in SPLIT_ARTICLES["train"]:
        assert (f" = {title} = " in train_text) + (f" = {title} = " in fresh_text) <= 1
    assert len(human.train) + len(human.fresh) <= len(to_blocks(human.tokenizer.encode("\n\n".join(docs["train"])), 16))


def test_official_split_names_must_exist(wikitext, tmp_path):
    with pytest.raises(DataError) as err:
        read(wikitext, splits="official", valid_split="dev")
    assert str(err.value) == f"{wikitext}: no split 'dev'; available: train, validation, test (set data.valid_split)"
    with pytest.raises(DataError, match=r"no split 'heldout'; available: train, validation, test \(set data\.test_"):
        read(wikitext, splits="official", test_split="heldout")
    datasets.Dataset.from_dict({"text": rows_of("train")}).save_to_disk(str(tmp_path / "single"))
    with pytest.raises(DataError, match="without named splits, so it has no split 'validation'"):
        read(tmp_path / "single", splits="official")
    (tmp_path / "rows.txt").write_text("one\ntwo\n")
    with pytest.raises(DataError, match="rows.txt: .*validation.*train") as err:
        read(tmp_path / "rows.txt", splits="official")
    assert err.value.path == str(tmp_path / "rows.txt")
