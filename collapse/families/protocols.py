"""The contracts a model family meets: `ModelFamily` for the generational loop and the metrics (the
transformer), `AnalyticFamily` for the one-program studies of `collapse.families.analytic` (gaussian, gmm,
categorical, linreg). A new family implements one of them; tests/test_protocols.py checks every family
against its contract.

Arrays in `ModelFamily` carry a leading replicate axis R: one call serves every replicate of a study.
An `AnalyticFamily` is a module of pure functions of one replicate (`cfg` is its model config; data,
statistics and parameters are pytrees of arrays, data with a leading point axis), which `analytic` vmaps
over replicates and scans over generations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

Pytree = Any


@runtime_checkable
class Scorer(Protocol):
    """What `collapse.metrics.score` needs of a family: model passes over token arrays `[R, N, T]`."""

    def logprob(self, params_R: Pytree, tokens_RNT: np.ndarray, batch: int = 256, skip: int = 0) -> np.ndarray:
        """log p(tokens skip..T-1 | the ones before, from BOS) per sequence `[R, N]`."""
        ...

    def next_token_mass(self, params_R: Pytree, tokens_RNT: np.ndarray, batch: int = 256, first: int = 0
                        ) -> np.ndarray:
        """The mean predicted next-token distribution over positions first..T-1 `[R, V]`."""
        ...


@runtime_checkable
class ModelFamily(Scorer, Protocol):
    """What `collapse.loop` needs of a family: parameters for R replicates, trained, checkpointed, sampled.

    `layout` says where replicates and batches live (`collapse.devices.Layout`); `abstract` gives the
    shapes `store.load_params` restores into."""

    layout: Any

    def init(self, keys_R: jax.Array) -> Pytree:
        """Fresh parameters, one set per key."""
        ...

    def abstract(self, replicates: int) -> Pytree:
        """Shapes, dtypes and shardings of `init`'s output (`jax.ShapeDtypeStruct`s)."""
        ...

    def fit(self, params_R: Pytree, data_RNT: np.ndarray, rngs: list[np.random.Generator], cfg: Any,
            on_chunk: Callable[[int, np.ndarray], None] | None = None, checkpoints: Any = None,
            teacher: Any = None, weights_RN: np.ndarray | None = None) -> tuple[Pytree, np.ndarray]:
        """Train each replicate from `params_R` on its data: (parameters, losses `[R, steps]`); with a
        `teacher` (`collapse.distill.Teacher`), its soft rows learn the teacher's distributions; `weights_RN`
        weights each row's loss."""
        ...

    def sample(self, params_R: Pytree, prompts_RNP: np.ndarray, keys_R: jax.Array, cfg: Any, n_new: int,
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Continue each prompt (may be empty) by `n_new` tokens: `[R, N, n_new]` int32."""
        ...


@runtime_checkable
class AnalyticFamily(Protocol):
    """A closed-form family: one replicate's truth, data, sufficient statistics, fit, samples and metrics.

    `combine` merges the statistics of two data sets (regime=accumulate keeps a running total); None when the
    fit needs the points themselves (EM), and then accumulate keeps every point."""

    combine: Callable[[Pytree, Pytree], Pytree] | None

    def truth(self, cfg: Any) -> Pytree:
        """The ground truth, shared by every replicate and seed."""
        ...

    def human(self, cfg: Any, truth: Pytree, key: jax.Array, n: int) -> Pytree:
        """n points of human data (leading axis n on every leaf)."""
        ...

    def stats(self, cfg: Any, data: Pytree, w_N: jax.Array) -> Pytree:
        """What a fit needs of the data set weighted by `w_N`."""
        ...

    def init(self, cfg: Any, data: Pytree, key: jax.Array) -> Pytree | None:
        """Generation 0's starting point (EM), or None."""
        ...

    def fit(self, cfg: Any, stats: Pytree, previous: Pytree | None) -> Pytree:
        """The parameters fitted to `stats` (`previous`: the last fit, or `init`'s output at generation 0)."""
        ...

    def sample(self, cfg: Any, params: Pytree, key: jax.Array, human: Pytree) -> Pytree:
        """`cfg.samples` points of the fit (linreg reads the human design)."""
        ...

    def metrics(self, cfg: Any, truth: Pytree, params: Pytree) -> dict[str, jax.Array]:
        """Scalar metrics of a fit against the truth."""
        ...

    def min_points(self, cfg: Any) -> int:
        """The fewest training points a fit accepts."""
        ...

    def point_size(self, cfg: Any) -> int:
        """Numbers per data point (sizes the buffer of accumulated points)."""
        ...

    def theory(self, cfg: Any, regime: Any, generations: int) -> dict[str, np.ndarray]:
        """{metric: its expectation at generations 0..generations-1} for the metrics with a closed form under
        `regime` (the report draws them under the simulated means); {} where none has one."""
        ...
