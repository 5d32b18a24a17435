"""The transformer family's scoring passes, on models whose logits are fixed by hand."""

import jax
import numpy as np
import pytest
from flax import nnx

from collapse.families.transformer import TransformerFamily
from collapse.metrics import perplexity
from collapse.model import with_bos
from tests.helpers import TINY_MODEL

V = 5


@pytest.fixture(scope="module")
def fixed():
    """Two replicates whose every position predicts softmax(z_r), whatever the input: the final LayerNorm
    outputs its bias e_0 (scale 0), and row 0 of the head is z_r."""
    family = TransformerFamily(TINY_MODEL, V)
    z_RV = np.array([[2.0, 1.0, 0.0, -1.0, 0.5], [0.0, 0.0, 3.0, 0.0, -2.0]], np.float32)
    e0 = np.eye(TINY_MODEL.d_model, dtype=np.float32)[0]

    def fix(path, leaf):
        name = jax.tree_util.keystr(path)
        if "['ln_f']['scale']" in name:
            return np.zeros_like(leaf)
        if "['ln_f']['bias']" in name:
            return np.broadcast_to(e0, leaf.shape)
        if "['head']['kernel']" in name:
            kernel = np.zeros(leaf.shape, np.float32)
            kernel[:, 0, :] = z_RV
            return kernel
        return leaf

    random = family.init(jax.random.split(jax.random.key(0), 2))
    logp_RV = np.asarray(jax.nn.log_softmax(z_RV), np.float64)
    return family, jax.tree_util.tree_map_with_path(fix, random), logp_RV, random


def test_logprob_and_perplexity_in_closed_form(fixed):
    family, params, logp_RV, _ = fixed
    tokens_NT = np.random.default_rng(0).integers(0, V, (7, 6), dtype=np.int32)  # 7 rows in batches of 3: the last one padded
    lp_RN = family.logprob(params, np.broadcast_to(tokens_NT, (2, 7, 6)), batch=3)
    expected_RN = logp_RV[:, tokens_NT].sum(axis=-1)
    np.testing.assert_allclose(lp_RN, expected_RN, rtol=1e-5)
    for r in range(2):
        expected = np.exp(-logp_RV[r, tokens_NT].mean())
        assert perplexity.perplexity(lp_RN[r], 6) == pytest.approx(expected, rel=1e-5)
    cont_RN = family.logprob(params, np.broadcast_to(tokens_NT, (2, 7, 6)), batch=3, skip=2)
    np.testing.assert_allclose(cont_RN, logp_RV[:, tokens_NT[:, 2:]].sum(axis=-1), rtol=1e-5)


def test_next_token_mass_is_the_fixed_distribution(fixed):
    family, params, logp_RV, _ = fixed
    tokens = np.random.default_rng(1).integers(0, V, (2, 5, 4), dtype=np.int32)
    mass_RV = family.next_token_mass(params, tokens, batch=2)
    np.testing.assert_allclose(mass_RV, np.exp(logp_RV), rtol=1e-5)


def test_next_token_mass_averages_over_every_position(fixed):
    family, _, _, params = fixed  # random weights: every position predicts differently
    tokens = np.random.default_rng(2).integers(0, V, (2, 5, 4), dtype=np.int32)
    mass_RV = family.next_token_mass(params, tokens, batch=2)
    for r in range(2):
        model = nnx.merge(family.graphdef, jax.tree.map(lambda x: x[r], params))
        probs_NTV = np.asarray(jax.nn.softmax(model(with_bos(tokens[r], V))), np.float64)
        np.testing.assert_allclose(mass_RV[r], probs_NTV.mean(axis=(0, 1)), rtol=1e-5)
