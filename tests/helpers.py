"""Shared by the tests: tiny configurations (d_model 32, 2 layers, context 32) for the Python API and the
command line, run-directory comparison, and the statistical check of a mean."""

import contextlib
import os

from collapse.config import Config, SampleConfig, TrainConfig
from collapse.data import GrammarConfig
from collapse.families import TransformerConfig
from collapse.hydra_config import compose as compose_cfg  # noqa: F401  (the config `collapse <overrides>` runs)

TINY_MODEL = TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64, context=32)


def tiny_config(**overrides) -> Config:
    base = dict(
        data=GrammarConfig(vocab_size=16, n_states=4, n_train=64, n_valid=16, n_test=32, seq_len=16),
        model=TINY_MODEL,
        train=TrainConfig(batch_size=16, epochs=2, log_every=4),
        sample=SampleConfig(batch_size=64),
        generations=2,
        compilation_cache="",
    )
    base.update(overrides)
    return Config(**base)


# The same tiny study as command-line overrides, compiling into the test processes' shared XLA cache.
XLA_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]  # tests/conftest.py: shared by all test processes
TINY = ["data.vocab_size=16", "data.n_states=4", "data.n_train=64", "data.n_valid=16", "data.n_test=32",
        "data.seq_len=16", "model.d_model=32", "model.d_ff=64", "model.context=32", "train.batch_size=16",
        "train.epochs=2", "sample.batch_size=64", f"compilation_cache={XLA_CACHE}"]


@contextlib.contextmanager
def stopped_at_call(monkeypatch, owner, name: str, call: int):
    """Inside the block `owner.name` raises KeyboardInterrupt on its `call`-th call (a study stopped there; the
    block must raise it), and it is itself again after the block."""
    import pytest

    real, calls = getattr(owner, name), []

    def stop(*args):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(owner, name, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(owner, name, real)


def outputs(path):
    """What an uninterrupted and a resumed run must agree on, bit for bit."""
    import numpy as np

    files = sorted(p.relative_to(path) for p in path.rglob("*.npy"))
    return (path / "metrics.jsonl").read_text(), {f: np.load(path / f) for f in files}


def assert_same(a, b):
    """Two `outputs` are identical."""
    import numpy as np

    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys()
    for f in a[1]:
        np.testing.assert_array_equal(a[1][f], b[1][f], err_msg=str(f))


# Statistical checks compare a mean over many independent replicates with its expectation. Z = 4 standard
# errors: a two-sided normal tail of 6.3e-5 per check, so a correct simulation fails a check about once in
# 16 000 runs (the means are over >= 1000 replicates, close enough to normal; each test says why).
Z = 4.0


def assert_mean(values, expected, sd, what: str, z: float = Z) -> None:
    """|mean(values) - expected| <= z sd / sqrt(n): `sd` is the standard deviation of one value (exact where
    the theory gives it, else the sample's)."""
    import numpy as np

    values = np.asarray(values, np.float64)
    bound = z * sd / np.sqrt(len(values))
    assert abs(values.mean() - expected) <= bound, (
        f"{what}: mean {values.mean():.6g} vs theory {expected:.6g}, allowed ± {bound:.3g} ({z} standard errors)")


def write_corpus(path, n_paragraphs=120, words=None):
    """Paragraphs of 30 random words; by default words w0..w9999, so no two 16-byte blocks coincide."""
    import numpy as np

    rng = np.random.default_rng(0)
    words = words or [f"w{i}" for i in range(10_000)]
    path.write_text("\n\n".join(" ".join(rng.choice(words, 30)) for _ in range(n_paragraphs)))
    return str(path)
