"""Hugging Face loader: saved datasets and local data files load; errors are clear; nothing goes online."""

import json
import os
import socket
import time

import pytest

datasets = pytest.importorskip("datasets")

from collapse.config import DataError, HFConfig  # noqa: E402
from collapse.data.hf import read_documents_hf  # noqa: E402

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
