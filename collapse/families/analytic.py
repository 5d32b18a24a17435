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

Each regime's `analytic_stats` (`collapse.regimes`) builds its training statistics in static shapes, with the
meaning and sizes of its `build` (M = `samples` is both the human train size and the synthetic corpus size):

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

Computation only: `collapse.run.analytic` writes the run directory of an analytic study.

Shape suffixes: the package's (collapse/__init__.py), and Q the snapshot generations whose fits are kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from collapse import regimes
from collapse.config import Config
from collapse.errors import ConfigError
from collapse.families import ModelConfig
from collapse.families.protocols import AnalyticFamily
from collapse.rng import Phase, human_key, key_for

# Largest buffer of accumulated points (all replicates) that accumulate_subsample / GMM accumulate may hold.
MAX_BUFFER = 2**28


def family(model: ModelConfig) -> AnalyticFamily:
    """The module that implements an analytic `model` option (`collapse.families.<option>`)."""
    return model.family()


@dataclass(frozen=True)
class Simulation:
    metrics: dict[str, np.ndarray]  # name -> [G, R]
    params: dict[str, np.ndarray]  # parameter field -> [Q, R, ...] at `generations`
    generations: np.ndarray  # [Q] the snapshot generations
    seconds: float  # the compiled program's run
    compile_seconds: float


def _needs_buffer(cfg: Config) -> bool:
    return cfg.regime.keeps_points(family(cfg.model).combine)


def check(cfg: Config) -> None:
    """Refuse, before any compute, a regime without an analytic form and training sets that cannot be built or
    held in memory."""
    reason = cfg.regime.analytic_form()
    if reason is not None:
        raise ConfigError("regime", reason)
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


class Context:
    """What a regime's `analytic_stats` may use for one replicate inside the program (`collapse.regimes`): the
    family module `fam` and its config `m`, M = `m.samples`, the replicate's `human` points and the `truth`,
    the buffer's `blocks` (block 0 human, block j + 1 generation j's points), and the operations below."""

    def __init__(self, fam: AnalyticFamily, m, human, truth, blocks: int):
        self.fam, self.m, self.human, self.truth, self.blocks, self.M = fam, m, human, truth, blocks, m.samples

    def stats(self, data, w_N: jax.Array | None = None):
        """The family's statistics of `data`, every point weighted 1 unless `w_N` says otherwise."""
        n = jax.tree.leaves(data)[0].shape[0]
        return self.fam.stats(self.m, data, jnp.ones(n) if w_N is None else w_N)

    def filled(self, g):
        """Weights `[blocks · M]` of the buffer: 1 for the (g + 1) M points filled by generation g, else 0."""
        return (jnp.arange(self.blocks * self.M) < (g + 1) * self.M).astype(jnp.float32)

    take = staticmethod(_take)
    concat = staticmethod(_concat)
    subset = staticmethod(_subset)


def _one_replicate(cfg: Config, snapshots: np.ndarray, r: jax.Array, truth):
    """Metrics [G] and snapshot parameters [Q, ...] of replicate r."""
    fam, m, regime = family(cfg.model), cfg.model, cfg.regime
    G, M = cfg.generations, m.samples

    key = lambda g, phase: key_for(cfg.seed, g, r, phase)  # noqa: E731  (g and r may be traced)

    human = _human(cfg, truth, r)
    blocks = max(G, 2)  # block 0: human, block j + 1: generation j's points
    ctx = Context(fam, m, human, truth, blocks)
    human_stats = ctx.stats(human)
    carry = {"params": fam.fit(m, human_stats, fam.init(m, human, key(0, Phase.INIT))),
             **regime.analytic_init(ctx, human_stats)}
    buffered = _needs_buffer(cfg)
    if buffered:
        carry["buffer"] = jax.tree.map(lambda h: jnp.zeros((blocks * M, *h.shape[1:]), h.dtype).at[:M].set(h), human)
    Q = len(snapshots)
    snap_Q = jnp.asarray(snapshots, jnp.int32)
    if Q:
        carry["snap"] = jax.tree.map(lambda p: jnp.zeros((Q, *p.shape), p.dtype), carry["params"])

    def step(carry, g):
        """Measure and sample generation g, then fit generation g + 1 (wasted at g = G - 1: one program
        text for every generation compiles faster than a separate generation 0)."""
        params, new = carry["params"], dict(carry)
        if Q:
            i = jnp.minimum(jnp.searchsorted(snap_Q, g), Q - 1)
            keep = lambda b, p: b.at[i].set(jnp.where(snap_Q[i] == g, p, b[i]))  # noqa: E731
            new["snap"] = jax.tree.map(keep, carry["snap"], params)
        newest = fam.sample(m, params, key(g, Phase.SAMPLE), human)
        if buffered:  # at g = G - 1 the write is clamped and unused
            new["buffer"] = jax.tree.map(lambda b, x: jax.lax.dynamic_update_slice_in_dim(b, x, (g + 1) * M, 0),
                                         carry["buffer"], newest)
        stats, updates = regime.analytic_stats(ctx, new, newest, g + 1, key(g + 1, Phase.REGIME))
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
