"""Every random key of a run derives from its seed, so resumed, vmapped and single runs draw the same numbers.

    key(seed, generation, replicate, phase) = fold_in(fold_in(fold_in(key(seed), generation), replicate), phase)

The human data is shared by all generations and replicates and uses its own stream, `human_key(seed)`.
"""

import enum

import jax
import jax.numpy as jnp

HUMAN_STREAM = 2**32 - 1  # a "generation" no run reaches


class Phase(enum.IntEnum):
    INIT = 0  # model initialisation
    TRAIN = 1  # batch order
    SAMPLE = 2  # synthetic corpus
    REGIME = 3  # which examples make the training set
    SCORE = 4  # metric subsamples


def key_for(seed: int, generation: int, replicate: int, phase: Phase) -> jax.Array:
    key = jax.random.key(seed)
    for part in (generation, replicate, int(phase)):
        key = jax.random.fold_in(key, part)
    return key


def replicate_keys(seed: int, generation: int, replicates: int, phase: Phase) -> jax.Array:
    """Keys `[R]` for replicates 0..R-1, each equal to `key_for(seed, generation, r, phase)`."""
    gen_key = jax.random.fold_in(jax.random.key(seed), generation)
    per_rep = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(gen_key, r), int(phase)))
    return per_rep(jnp.arange(replicates, dtype=jnp.uint32))


def human_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), HUMAN_STREAM)


def numpy_rng(key: jax.Array) -> "np.random.Generator":
    """A NumPy generator seeded from a JAX key, for host-side shuffles that must also derive from the seed."""
    import numpy as np

    return np.random.default_rng(np.asarray(jax.random.key_data(key)).tolist())
