"""Every random key of a run derives from its seed, so resumed, vmapped and single runs draw the same numbers.

    key(seed, generation, replicate, phase) = fold_in(fold_in(fold_in(key(seed), generation), replicate), phase)

The human data is shared by all generations and replicates and uses its own stream, `human_key(seed)`.
A phase that draws in rounds (curation's further candidates) takes round k's key from `for_round`.

Several labs (docs/ecosystems.md): lab k (its place in `labs`) draws from `lab_key(seed, k)` in place of
key(seed): lab 0's keys are exactly those of a single-lab study of the same seed, lab k >= 1's
fold_in(fold_in(key(seed), LAB_STREAM), k). The human data is every lab's (`human_key(seed)`); a lab's own draws
of it (the grammar's fresh rows) fold in k the same way.
"""

import enum

import jax
import jax.numpy as jnp
import numpy as np

HUMAN_STREAM = 2**32 - 1  # a "generation" no run reaches
ROUND_STREAM = 2**32 - 1  # folded into a phase key before the round number (no batch index reaches it)
LAB_STREAM = 2**32 - 2  # folded into the seed's key before a lab's index (no generation reaches it)


class Phase(enum.IntEnum):
    INIT = 0  # model initialisation
    TRAIN = 1  # batch order
    SAMPLE = 2  # synthetic corpus
    REGIME = 3  # which examples make the training set
    SCORE = 4  # metric subsamples
    CURATE = 5  # curation: verifier noise, corrections
    WITHHELD = 6  # samples drawn like the corpus and never released (the membership test's control)


def lab_key(seed: int, lab: int = 0) -> jax.Array:
    """The key every other key of lab `lab` derives from: key(seed) for lab 0 (a single-lab study)."""
    key = jax.random.key(seed)
    return key if lab == 0 else jax.random.fold_in(jax.random.fold_in(key, LAB_STREAM), lab)


def key_for(seed: int, generation: int, replicate: int, phase: Phase, lab: int = 0) -> jax.Array:
    key = lab_key(seed, lab)
    for part in (generation, replicate, int(phase)):
        key = jax.random.fold_in(key, part)
    return key


def replicate_keys(seed: int, generation: int, replicates: int, phase: Phase, lab: int = 0) -> jax.Array:
    """Keys `[R]` for replicates 0..R-1, each equal to `key_for(seed, generation, r, phase, lab)`."""
    gen_key = jax.random.fold_in(lab_key(seed, lab), generation)
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
