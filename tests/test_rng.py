"""Random keys: the documented fold_in chain, the same key per replicate whether drawn alone or vmapped."""

import jax
import numpy as np

from collapse.rng import HUMAN_STREAM, Phase, human_key, key_for, numpy_rng, replicate_keys


def _data(key):
    return np.asarray(jax.random.key_data(key))


def test_key_for_is_the_documented_fold_in_chain():
    # key(seed, generation, replicate, phase) = fold_in(fold_in(fold_in(key(seed), generation), replicate), phase)
    f = jax.random.fold_in
    expected = f(f(f(jax.random.key(7), 3), 2), int(Phase.SAMPLE))
    np.testing.assert_array_equal(_data(key_for(7, 3, 2, Phase.SAMPLE)), _data(expected))
    np.testing.assert_array_equal(_data(human_key(7)), _data(f(jax.random.key(7), HUMAN_STREAM)))


def test_replicate_keys_equal_key_for_each_replicate():
    keys = replicate_keys(5, 4, 3, Phase.TRAIN)
    assert keys.shape == (3,)
    for r in range(3):
        np.testing.assert_array_equal(_data(keys[r]), _data(key_for(5, 4, r, Phase.TRAIN)))


def test_keys_differ_by_every_part():
    base = _data(key_for(0, 1, 1, Phase.INIT))
    for other in (key_for(1, 1, 1, Phase.INIT), key_for(0, 2, 1, Phase.INIT), key_for(0, 1, 2, Phase.INIT),
                  key_for(0, 1, 1, Phase.TRAIN), human_key(0)):
        assert not np.array_equal(base, _data(other))


def test_numpy_rng_is_a_function_of_the_key():
    a, b = numpy_rng(key_for(0, 0, 0, Phase.REGIME)), numpy_rng(key_for(0, 0, 0, Phase.REGIME))
    assert a.integers(2**62) == b.integers(2**62)
    assert numpy_rng(key_for(0, 0, 1, Phase.REGIME)).integers(2**62) != numpy_rng(
        key_for(0, 0, 0, Phase.REGIME)).integers(2**62)
