"""Tokenizers: exact round trips, total decoding, deterministic training, save/load and fingerprints."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collapse.errors import DataError
from collapse.data.tokenizer import (
    BPETokenizer,
    ByteTokenizer,
    load_tokenizer,
    make_tokenizer,
    train_bpe,
)

UNICODE = "héllo wörld — 東京 🙂"
CORPUS = [
    "the quick brown fox jumps over the lazy dog. " * 5,
    "héllo wörld — 東京 🙂 naïve café, déjà vu; straße.\n\nthe end",
    "It's a dog's life: 1, 2, 3... 42! (maybe)\ttabs\r\nand CRLF",
    "lorem ipsum dolor sit amet " * 10,
]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return train_bpe(CORPUS, 300)


@pytest.fixture(params=["byte", "bpe"])
def tok(request, bpe):
    return ByteTokenizer() if request.param == "byte" else bpe


@pytest.mark.parametrize("text", ["", "hello world", UNICODE, "  lead\n\n\ntrail  \r\n", "\u2028\x00\x1c"])
def test_round_trip(tok, text):
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert ((ids >= 0) & (ids < tok.vocab_size)).all()
    assert tok.decode(ids) == text


def test_byte_ids_are_utf8():
    assert ByteTokenizer().encode(UNICODE).tolist() == list(UNICODE.encode("utf-8"))
    assert ByteTokenizer().vocab_size == 256


def test_bpe_compresses_and_sizes(bpe):
    assert 256 < bpe.vocab_size <= 300
    text = CORPUS[0]
    assert len(bpe.encode(text)) < len(text.encode("utf-8"))


@settings(max_examples=50, deadline=None)
@given(text=st.text())
def test_round_trip_property(bpe, text):
    for t in (ByteTokenizer(), bpe):
        assert t.decode(t.encode(text)) == text


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab é東🙂\n\t\r'.s1\u00a0\u2028")), max_size=80),
       chunk=st.integers(1, 8))
def test_bpe_chunked_encoding_is_exact(bpe, text, chunk):
    # encode() cuts long texts at pre-tokenizer boundaries; the ids must equal one whole-text encoding
    assert bpe.encode(text, chunk_chars=chunk).tolist() == bpe.tok.encode(text).ids


def test_decode_any_ids_never_crashes(tok):
    rng = np.random.default_rng(0)
    for _ in range(50):
        ids = rng.integers(0, tok.vocab_size, size=rng.integers(0, 40))
        assert isinstance(tok.decode(ids), str)
    invalid = tok.decode([-1, tok.vocab_size, 10**9])  # out of range: replacement characters
    assert set(invalid) == {"\ufffd"}


def test_byte_decode_invalid_utf8():
    assert ByteTokenizer().decode([0xE6, 0x9D]) == "\ufffd"  # a truncated 3-byte character


def test_bpe_training_is_deterministic(bpe):
    again = train_bpe(list(CORPUS), 300)
    assert again.tok.get_vocab() == bpe.tok.get_vocab()
    assert again.fingerprint() == bpe.fingerprint()
    assert again.encode(UNICODE).tolist() == bpe.encode(UNICODE).tolist()


def test_fingerprint_differs_between_vocabularies(bpe):
    other = train_bpe(["completely different text, zzz yyy xxx " * 20], 300)
    assert len({bpe.fingerprint(), other.fingerprint(), ByteTokenizer().fingerprint()}) == 3


def test_save_load_round_trip(tok, tmp_path):
    path = tmp_path / "sub" / "tokenizer.json"
    tok.save(path)
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok) and loaded.kind == tok.kind
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.fingerprint() == tok.fingerprint()
    for text in CORPUS + [UNICODE]:
        assert loaded.encode(text).tolist() == tok.encode(text).tolist()
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temp file left behind


@pytest.mark.parametrize("content", [None, "", "{not json", '{"type": "wordpiece"}', "[1, 2]",
                                     '{"type": "bpe", "version": 1, "tokenizer": {"model": 3}}',
                                     '{"type": "bpe", "version": 99, "tokenizer": {}}'])
def test_missing_or_corrupt_file(tmp_path, content):
    path = tmp_path / "tokenizer.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as err:
        load_tokenizer(path)
    assert err.value.path == str(path)


def test_make_tokenizer():
    assert isinstance(make_tokenizer("byte", [], 0), ByteTokenizer)
    assert isinstance(make_tokenizer("bpe", CORPUS, 280), BPETokenizer)
    with pytest.raises(ValueError, match="unknown tokenizer"):
        make_tokenizer("wordpiece", CORPUS, 280)
