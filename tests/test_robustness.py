"""Property tests: random configs are validated cleanly; damaged run directories give a clean error or an
exact resume, never silently different numbers."""

import dataclasses
import shutil
import typing

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collapse.run import loop
from collapse.config import Config, OPTIONS
from collapse.errors import ConfigError, DataError
from collapse.families import TransformerConfig
from collapse.validate import validate
from tests.helpers import assert_same, outputs, tiny_config

BY_GROUP = {}
for option in OPTIONS:
    BY_GROUP.setdefault(option.group, []).append(option.schema)

_INTS = st.one_of(st.integers(-3, 3), st.integers(-10**9, 10**9), st.sampled_from([16, 64, 128, 1024]))
_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]))
_STRS = st.one_of(st.text(max_size=6), st.sampled_from(["byte", "bpe", "auto", "jsonl", "scratch", "gen0",
                                                        "continuation", "unconditional", "token", "float32"]))


def _value(tp):
    optional = [a for a in typing.get_args(tp) if a is not type(None)]  # `float | None`: either
    if len(optional) == 1 and type(None) in typing.get_args(tp):
        return st.one_of(st.none(), _value(optional[0]))
    return {int: _INTS, float: _FLOATS, str: _STRS, bool: st.booleans()}[tp]


def _instance(cls):
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _value(hints[f.name]) for f in dataclasses.fields(cls)})


configs = st.builds(
    Config, **{group: st.sampled_from(classes).flatmap(_instance) for group, classes in BY_GROUP.items()},
    generations=_INTS, seed=_INTS, replicates=_INTS)


def _key_exists(key: str, cfg: Config) -> bool:
    d = dataclasses.asdict(cfg)  # every field (to_dict leaves keys added later out at their defaults)
    parts = key.split(".")
    if parts[0] == "config":
        parts = parts[1:]
    for p in parts:
        if not isinstance(d, dict) or p not in d:
            return False
        d = d[p]
    return True


@given(configs)
@settings(max_examples=400, deadline=None, derandomize=True)
def test_random_configs_are_refused_with_a_named_key_or_are_sound(cfg):
    try:
        validate(cfg)
    except ConfigError as e:
        assert _key_exists(e.key, cfg), e.key
        return
    assert cfg.generations > 0 and cfg.replicates > 0 and 0 <= cfg.seed < 2**32
    assert cfg.data.seq_len > 0 and cfg.train.batch_size > 0 and cfg.train.lr > 0
    assert 0 < cfg.sample.top_p <= 1 and cfg.sample.temperature >= 0
    if isinstance(cfg.model, TransformerConfig):
        assert cfg.model.d_model % cfg.model.n_heads == 0 and cfg.data.seq_len <= cfg.model.context
    for obj in (cfg.data, cfg.model, cfg.train, cfg.sample, cfg.regime):
        assert all(np.isfinite(v) for v in vars(obj).values() if isinstance(v, float))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("finished")
    cfg = tiny_config()
    loop.run(cfg, path)
    return cfg, path


def _damage(path, action, rng):
    data = path.read_bytes()
    if action == "delete":
        path.unlink()
    elif action == "truncate":
        path.write_bytes(data[: int(rng.integers(0, max(1, len(data))))])
    elif action == "garbage":
        path.write_bytes(rng.bytes(int(rng.integers(1, 200))))
    elif action == "flip" and data:
        i = int(rng.integers(0, len(data)))
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])


@given(st.data())
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_damaged_run_directory_errors_cleanly_or_resumes_exactly(finished, tmp_path_factory, data):
    cfg, ref = finished
    copy = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(ref, copy)
    files = sorted(p for p in copy.rglob("*") if p.is_file() and p.name != ".lock")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    for _ in range(data.draw(st.integers(1, 3), label="damages")):
        victim = data.draw(st.sampled_from(files), label="file")
        if victim.exists():
            _damage(victim, data.draw(st.sampled_from(["delete", "truncate", "garbage", "flip"]), label="how"), rng)
    try:
        loop.run(cfg, copy)
    except (DataError, ConfigError):
        return  # a clean refusal naming the file or key
    assert_same(outputs(copy), outputs(ref))


def test_an_altered_generation_is_recomputed_and_a_study_never_shrinks(finished, tmp_path, caplog):
    """Appending a line to an earlier generation's metrics.jsonl (in the score marker's digests) recomputes that
    generation's score phase with the same numbers; a rerun with fewer generations loads them all and keeps
    config.json's count; a resume says what it loaded, and a repaired human file is named."""
    import json
    import logging

    cfg, ref = finished
    copy = tmp_path / "run"
    shutil.copytree(ref, copy)
    with open(copy / "gen_000" / "metrics.jsonl", "a") as f:
        f.write("not json\n")
    (copy / "human" / "rep_00" / "buckets.npy").unlink()
    with caplog.at_level(logging.INFO, logger="collapse"):
        loop.run(dataclasses.replace(cfg, generations=1), copy)
    assert_same(outputs(copy), outputs(ref))
    assert json.loads((copy / "config.json").read_text())["generations"] == cfg.generations == 2
    text = caplog.text
    assert "recomputing phase score of generation 0" in text and "buckets.npy: missing or damaged" in text
    assert "(train, sample loaded from run)" in text and "(train, sample, score loaded from run)" in text
    assert "holds 2 finished generations; generations=1 runs none of them again" in text
