"""Every random key of a run derives from its seed, so resumed, vmapped and single runs draw the same numbers.

    key(seed, generation, replicate, phase) = fold_in(fold_in(fold_in(key(seed), generation), replicate), phase)

The human data is shared by all generations and replicates and uses its own stream, `human_key(seed)`.
A phase that draws in rounds (curation's further candidates) takes round k's key from `for_round`.
"""

import enum

import jax
import jax.numpy as jnp
import numpy as np

HUMAN_STREAM = 2**32 - 1  # a "generation" no run reaches
ROUND_STREAM = 2**32 - 1  # folded into a phase key before the round number (no batch index reaches it)


class Phase(enum.IntEnum):
    INIT = 0  # model initialisation
    TRAIN = 1  # batch order
    SAMPLE = 2  # synthetic corpus
    REGIME = 3  # which examples make the training set
    SCORE = 4  # metric subsamples
    CURATE = 5  # curation: verifier noise, corrections


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


def for_round(key: jax.Array, round: int) -> jax.Array:
    """Round `round`'s key of a phase key (one key, or a batch `[R]`): round 0 is the key itself (the stream
    of a run without rounds), round k >= 1 `fold_in(fold_in(key, ROUND_STREAM), k)`."""
    if round == 0:
        return key
    one = lambda k: jax.random.fold_in(jax.random.fold_in(k, ROUND_STREAM), round)  # noqa: E731
    return one(key) if key.ndim == 0 else jax.vmap(one)(key)


def human_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), HUMAN_STREAM)


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded from a JAX key, for host-side shuffles that must also derive from the seed."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).tolist())
