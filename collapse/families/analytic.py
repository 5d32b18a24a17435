"""Analytic families: all replicates and all generations of a study in one compiled program.

`jax.vmap` over replicates, `lax.scan` over generations. A family is a module of pure functions of one
replicate (`cfg` is its model config; data, statistics and parameters are pytrees of arrays), the contract
`collapse.families.protocols.AnalyticFamily`:

    truth(cfg) -> truth                      the ground truth, shared by every replicate and seed
    human(cfg, truth, key, n) -> data        n points of human data (leading axis n on every leaf)
    stats(cfg, data, w_N) -> stats           what a fit needs of a weighted data set
    combine(a, b) -> stats                   statistics of a union; None when the fit needs the points (GMM)
    init(cfg, data, key) -> params | None    generation 0's starting point (EM only)
    fit(cfg, stats, previous) -> params
    sample(cfg, params, key, human) -> data  `samples` points of the fit (linreg reads the human design)
    metrics(cfg, truth, params) -> {name: scalar}

The regimes have the meaning and sizes of `collapse.regimes` (`training_size`, `mix_counts`; M = `samples`
is both the human train size and the synthetic corpus size) in static shapes:

    replace               the newest generation's M points
    accumulate            a running `combine` of the statistics, or (no `combine`) a buffer [G·M] of every
                          point with a mask of the (g + 1)·M filled so far
    accumulate_subsample  the buffer, and a uniform subset of `size` of its (g + 1)·M filled points
                          (Floyd's algorithm: O(size²) per generation, whatever g)
    mix                   n_h human points (a uniform subset of the replicate's human set, or fresh draws from
                          the truth) and a uniform n_s of the newest generation's points

Keys: replicate r's human data from fold_in(human_key(seed), r) (the theory averages over it, so each
replicate has its own); at generation g, key_for(seed, g, r, phase) with REGIME (subsets, fresh draws),
SAMPLE (the synthetic points) and INIT (EM's start at generation 0). Replicate r of a vmapped run equals
replicate r run alone, and a longer run repeats a shorter one's generations.

Computation only: `collapse.loop` writes the run directory of an analytic study.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from collapse import regimes
from collapse.config import (AccumulateConfig, AccumulateSubsampleConfig, AnalyticConfig, Config, MixConfig,
                             ModelConfig, ReplaceConfig, schemas)
from collapse.errors import ConfigError
from collapse.families.protocols import AnalyticFamily
from collapse.rng import Phase, human_key, key_for

# Each analytic `model` option of the registry is implemented by the module collapse.families.<name>.
FAMILIES: dict[type, AnalyticFamily] = {cls: importlib.import_module(f"collapse.families.{name}")
                                        for name, cls in schemas("model", AnalyticConfig).items()}

# Largest buffer of accumulated points (all replicates) that accumulate_subsample / GMM accumulate may hold.
MAX_BUFFER = 2**28


def family(model: ModelConfig) -> AnalyticFamily:
    return FAMILIES[type(model)]


@dataclass(frozen=True)
class Simulation:
    metrics: dict[str, np.ndarray]  # name -> [G, R]
    params: dict[str, np.ndarray]  # parameter field -> [S, R, ...] at `generations`
    generations: np.ndarray  # [S] the snapshot generations
    seconds: float  # the compiled program's run
    compile_seconds: float


def _needs_buffer(cfg: Config) -> bool:
    fam = family(cfg.model)
    return isinstance(cfg.regime, AccumulateSubsampleConfig) or (
        isinstance(cfg.regime, AccumulateConfig) and fam.combine is None)


def check(cfg: Config) -> None:
    """Refuse, before any compute, training sets that cannot be built or held in memory."""
    M, G, R = cfg.model.samples, cfg.generations, cfg.replicates
    regimes.check_sizes(cfg.regime, G, M, M, 1, synthetic_key="model.samples")
    fam = family(cfg.model)
    need = fam.min_points(cfg.model)
    n = min(regimes.training_size(cfg.regime, g, M, M) for g in range(min(G, 2)))
    if n < need:
        raise ConfigError("regime.size", f"training sets of {n} points are too small for this family "
                          f"(needs >= {need})")
    if _needs_buffer(cfg):
        points = R * max(G, 2) * M * fam.point_size(cfg.model)
        if points > MAX_BUFFER:
            raise ConfigError("generations", f"regime={cfg.regime.name} keeps every point: {points} numbers "
                              f"exceed {MAX_BUFFER}; lower generations, replicates or model.samples")


def _take(data, index_K: jax.Array):
    return jax.tree.map(lambda a: a[index_K], data)


def _concat(a, b):
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


def _subset(key: jax.Array, n: jax.Array, k: int) -> jax.Array:
    """k distinct indices, uniform among range(n) (n may be traced, n >= k): Floyd's algorithm, O(k²) and
    independent of n (a sort or top-k of n scores is far slower on a CPU)."""
    top_K = n - k + jnp.arange(k)
    t_K = jax.random.randint(key, (k,), 0, top_K + 1)

    def add(i, chosen_K):  # t_i if new, else top_i (larger than everything chosen so far)
        return chosen_K.at[i].set(jnp.where(jnp.any(chosen_K == t_K[i]), top_K[i], t_K[i]))

    return jax.lax.fori_loop(0, k, add, jnp.full(k, -1, jnp.int32))


def _human(cfg: Config, truth, r: jax.Array):
    """Replicate r's human data: `samples` points of the truth from fold_in(human_key(seed), r)."""
    return family(cfg.model).human(cfg.model, truth, jax.random.fold_in(human_key(cfg.seed), r), cfg.model.samples)


def human_data(cfg: Config, replicates: Sequence[int] | None = None):
    """The human data of the given replicates (default 0..R-1), leading axis R: what generation 0 fits."""
    reps = np.arange(cfg.replicates) if replicates is None else np.asarray(replicates)
    truth = family(cfg.model).truth(cfg.model)
    return jax.jit(jax.vmap(lambda r: _human(cfg, truth, r)))(jnp.asarray(reps, jnp.uint32))


def _one_replicate(cfg: Config, snapshots: np.ndarray, r: jax.Array, truth):
    """Metrics [G] and snapshot parameters [S, ...] of replicate r."""
    fam, m, regime = family(cfg.model), cfg.model, cfg.regime
    G, M = cfg.generations, m.samples

    key = lambda g, phase: key_for(cfg.seed, g, r, phase)  # noqa: E731  (g and r may be traced)

    human = _human(cfg, truth, r)
    ones_M = jnp.ones(M)
    human_stats = fam.stats(m, human, ones_M)
    carry = {"params": fam.fit(m, human_stats, fam.init(m, human, key(0, Phase.INIT)))}
    buffered = _needs_buffer(cfg)
    blocks = max(G, 2)  # block 0: human, block j + 1: generation j's points
    if isinstance(regime, AccumulateConfig) and not buffered:
        carry["pool"] = human_stats
    if buffered:
        carry["buffer"] = jax.tree.map(lambda h: jnp.zeros((blocks * M, *h.shape[1:]), h.dtype).at[:M].set(h), human)
    S = len(snapshots)
    snap_S = jnp.asarray(snapshots, jnp.int32)
    if S:
        carry["snap"] = jax.tree.map(lambda p: jnp.zeros((S, *p.shape), p.dtype), carry["params"])

    def training_stats(carry, newest, g, k):
        """Generation g's training statistics (g >= 1; `newest`: generation g - 1's points)."""
        if isinstance(regime, ReplaceConfig):
            return fam.stats(m, newest, ones_M), {}
        if isinstance(regime, AccumulateConfig) and not buffered:
            pool = fam.combine(carry["pool"], fam.stats(m, newest, ones_M))
            return pool, {"pool": pool}
        if isinstance(regime, AccumulateConfig):
            filled = jnp.arange(blocks * M) < (g + 1) * M
            return fam.stats(m, carry["buffer"], filled.astype(jnp.float32)), {}
        if isinstance(regime, AccumulateSubsampleConfig):
            size = regime.size or M
            pick = _subset(k, (g + 1) * M, size)
            return fam.stats(m, _take(carry["buffer"], pick), jnp.ones(size)), {}
        if isinstance(regime, MixConfig):
            n_h, n_s = regimes.mix_counts(regime, M)
            k_human, k_synthetic = jax.random.split(k)
            if regime.fresh:
                part = fam.human(m, truth, k_human, n_h)
            else:
                part = _take(human, jax.random.choice(k_human, M, (n_h,), replace=False))
            part = _concat(part, _take(newest, jax.random.choice(k_synthetic, M, (n_s,), replace=False)))
            return fam.stats(m, part, jnp.ones(n_h + n_s)), {}
        raise TypeError(f"unknown regime {regime!r}")

    def step(carry, g):
        """Measure and sample generation g, then fit generation g + 1 (wasted at g = G - 1: one program
        text for every generation compiles faster than a separate generation 0)."""
        params, new = carry["params"], dict(carry)
        if S:
            i = jnp.minimum(jnp.searchsorted(snap_S, g), S - 1)
            keep = lambda b, p: b.at[i].set(jnp.where(snap_S[i] == g, p, b[i]))  # noqa: E731
            new["snap"] = jax.tree.map(keep, carry["snap"], params)
        newest = fam.sample(m, params, key(g, Phase.SAMPLE), human)
        if buffered:  # at g = G - 1 the write is clamped and unused
            new["buffer"] = jax.tree.map(lambda b, x: jax.lax.dynamic_update_slice_in_dim(b, x, (g + 1) * M, 0),
                                         carry["buffer"], newest)
        stats, updates = training_stats(new, newest, g + 1, key(g + 1, Phase.REGIME))
        new.update(updates, params=fam.fit(m, stats, params))
        return new, fam.metrics(m, truth, params)

    carry, metrics = jax.lax.scan(step, carry, jnp.arange(G))
    return metrics, carry.get("snap", {})


def simulate(cfg: Config, replicates: Sequence[int] | None = None, snapshots: Sequence[int] = ()) -> Simulation:
    """Run the study `cfg` (an analytic model) for the given replicate indices (default 0..R-1), keeping
    the fitted parameters at the generations `snapshots` (generation 0 is always among them if any)."""
    reps = np.arange(cfg.replicates) if replicates is None else np.asarray(replicates)
    snaps = np.unique(np.clip(np.asarray(list(snapshots) + ([0] if len(snapshots) else []), int), 0,
                              cfg.generations - 1))
    truth = family(cfg.model).truth(cfg.model)
    program = jax.jit(jax.vmap(lambda r, t: _one_replicate(cfg, snaps, r, t), in_axes=(0, None)))
    t0 = time.perf_counter()
    compiled = program.lower(jnp.asarray(reps, jnp.uint32), truth).compile()
    t1 = time.perf_counter()
    metrics, params = jax.block_until_ready(compiled(jnp.asarray(reps, jnp.uint32), truth))
    t2 = time.perf_counter()
    fields = params._asdict() if hasattr(params, "_asdict") else dict(params)
    return Simulation({k: np.asarray(v).T for k, v in metrics.items()},
                      {k: np.swapaxes(np.asarray(v), 0, 1) for k, v in fields.items()}, snaps, t2 - t1, t1 - t0)
