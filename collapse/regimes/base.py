"""What every regime is: a registered config option that builds generation g's training set from the pools.

A regime may also heal (Bohacek & Farid 2023, `heal_after`, `heal_generations`): generations heal_after + 1 ..
heal_after + heal_generations train on the human train split alone, as generation 0 does, and the regime resumes
after them (its synthetic rows then come from the healed generations' samples).

Provenance is -1 for human data and j for data sampled by generation j. `index` is the row in its pool: for
human rows the pool is the train split followed by the fresh reserve (a fresh row has index >= len(train)); for
synthetic rows, generation j's samples. Generation 0 always trains on the human train split (`training_set`);
a regime says what generation g >= 1 trains on, in two forms that agree in meaning and sizes: `build` (NumPy,
the transformer's pools) and `analytic_stats` (static shapes inside the analytic families' compiled program).
All of it is a pure function of arrays and the NumPy or JAX key it is given.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from collapse.errors import ConfigError
from collapse.options import Registered


@dataclass(frozen=True)
class TrainingSet:
    tokens: np.ndarray  # [N, T]
    provenance: np.ndarray  # [N] int32: -1 human, j synthetic from generation j
    index: np.ndarray  # [N] int64: row within the example's pool
    lab: np.ndarray | None = None  # [N] int32, in an ecosystem: the lab whose sample it is (-1 human)

    def counts(self, labs: list[str] | None = None) -> dict[str, int]:
        """Examples by origin: {"human": n, "gen_0": n, ...}; in an ecosystem {"human": n, "a/gen_0": n, ...}
        (`labs`: the labs' names)."""
        if self.lab is None or labs is None:
            values, counts = np.unique(self.provenance, return_counts=True)
            return {("human" if v < 0 else f"gen_{v}"): int(c) for v, c in zip(values, counts)}
        pairs, counts = np.unique(np.stack([self.lab, self.provenance], axis=1), axis=0, return_counts=True)
        return {("human" if j < 0 else f"{labs[lab]}/gen_{j}"): int(c) for (lab, j), c in zip(pairs, counts)}


def take(pool: np.ndarray, provenance: int, index: np.ndarray) -> TrainingSet:
    """Rows `index` of one pool, all of one origin."""
    return TrainingSet(pool[index], np.full(len(index), provenance, np.int32), index.astype(np.int64))


def concat(parts: list[TrainingSet]) -> TrainingSet:
    return TrainingSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("tokens", "provenance", "index")))


def pick(ts: TrainingSet, rows: np.ndarray) -> TrainingSet:
    return TrainingSet(ts.tokens[rows], ts.provenance[rows], ts.index[rows])


def all_samples(synthetic: list[np.ndarray]) -> TrainingSet:
    """Every sample of generations 0..g-1, in generation order."""
    return concat([take(s, j, np.arange(len(s))) for j, s in enumerate(synthetic)])


@dataclass(frozen=True)
class RegimeConfig(Registered, abc.ABC, group="regime"):
    """Who trains generation g >= 1 (generation 0 always trains on the human train split)."""

    heal_after: int = 0  # healing: after this generation, ...
    heal_generations: int = 0  # ... this many generations train on the human train split alone (0 = no healing)
    LATER: ClassVar[dict[str, Any]] = {"heal_after": 0, "heal_generations": 0}  # left out of config.json at default
    SAMPLES_WHILE_TRAINING: ClassVar[bool] = False  # True: generations >= 1 sample their rows as they train

    def heals(self, g: int) -> bool:
        """Whether generation g is a healing generation (human train split only)."""
        return self.heal_generations > 0 and self.heal_after < g <= self.heal_after + self.heal_generations

    def check_healing(self, generations: int) -> None:
        """Refuse, naming the key, healing that starts before any collapse or runs past the last generation."""
        if not (self.heal_after or self.heal_generations):
            return
        if self.heal_after < 1:
            raise ConfigError("regime.heal_after", f"heals after a generation >= 1 that trained on synthetic data, "
                              f"got {self.heal_after}")
        if self.heal_generations < 1:
            raise ConfigError("regime.heal_generations", f"set >= 1 generations of healing after generation "
                              f"{self.heal_after}, got {self.heal_generations}")
        last = self.heal_after + self.heal_generations
        if last > generations - 1:
            raise ConfigError("regime.heal_generations", f"heals generations {self.heal_after + 1}..{last}, past the "
                              f"last generation {generations - 1}: raise generations to >= {last + 1}")

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad key of this regime."""

    def human_share(self) -> float | None:
        """The human share h of every training set of generation >= 1 that the regime fixes (None: not fixed)."""
        return getattr(self, "human_fraction", None)

    @abc.abstractmethod
    def training_size(self, g: int, n_human: int, n_synthetic: int) -> int:
        """Sequences in generation g >= 1's training set (closed form, for checks before any compute)."""

    def check_sizes(self, n_human: int, n_synthetic: int, synthetic_key: str) -> None:
        """Refuse, naming the key, sizes with which a training set cannot be built (`synthetic_key` sets the
        synthetic corpus size)."""

    def fresh_per_generation(self, n_human: int) -> int:
        """Never-seen human sequences each generation >= 1 takes from the fresh reserve."""
        return 0

    @abc.abstractmethod
    def build(self, g: int, human: np.ndarray, fresh: np.ndarray, synthetic: list[np.ndarray],
              rng: np.random.Generator) -> TrainingSet:
        """Generation g >= 1's training set from the human train split, the fresh reserve and the samples of
        generations 0..g-1 (`synthetic[j]`: generation j's corpus)."""

    def keeps_points(self, combine: Any) -> bool:
        """Whether the analytic program must keep every point of the study (the carry's `buffer`), given the
        family's `combine` (None: its fit needs the points)."""
        return False

    def analytic_init(self, ctx: Any, human_stats: Any) -> dict:
        """Entries this regime adds to the analytic program's carry."""
        return {}

    def analytic_form(self) -> str | None:
        """None if the analytic families can run this regime (`analytic_stats`), else why not."""
        return f"regime={self.name} has no form for the analytic families"

    def loss_weights(self, provenance_N: np.ndarray) -> np.ndarray | None:
        """Each row's weight in generation g >= 1's training loss (mean 1), from its provenance (-1 human), or
        None: every row weighs 1."""
        return None

    def analytic_stats(self, ctx: Any, carry: dict, newest: Any, g: Any, key: Any) -> tuple[Any, dict]:
        """Generation g >= 1's training statistics in static shapes inside the analytic program
        (`collapse.families.analytic.Context` `ctx`; `newest`: generation g - 1's points), and the carry entries
        it updates. Only where `analytic_form` is None."""
        return None, {}


def training_set(regime: RegimeConfig, g: int, human: np.ndarray, fresh: np.ndarray, synthetic: list[np.ndarray],
                 rng: np.random.Generator) -> TrainingSet:
    """Generation g's training set: the human train split at generation 0 and while healing, else the regime's
    (`build`)."""
    if g == 0 or regime.heals(g):
        return take(human, -1, np.arange(len(human)))
    assert len(synthetic) == g, "synthetic must hold one corpus per earlier generation"
    return regime.build(g, human, fresh, synthetic, rng)


def training_size(regime: RegimeConfig, g: int, n_human: int, n_synthetic: int) -> int:
    return n_human if g == 0 or regime.heals(g) else regime.training_size(g, n_human, n_synthetic)


def check_sizes(regime: RegimeConfig, generations: int, n_human: int, n_synthetic: int, batch_size: int,
                synthetic_key: str = "sample.num_sequences") -> None:
    """Refuse, before any compute, a study whose training sets cannot be built or batched."""
    regime.check_sizes(n_human, n_synthetic, synthetic_key)
    for g in range(1 if regime.SAMPLES_WHILE_TRAINING else generations if generations > 1 else 1):
        n = training_size(regime, g, n_human, n_synthetic)  # (online: one sequence a step from generation 1)
        if n < batch_size:
            raise ConfigError("train.batch_size", f"{batch_size} exceeds the {n} training sequences of "
                              f"generation {g}")


def fresh_needed(regime: RegimeConfig, generations: int, n_human: int) -> int:
    """Never-seen human sequences the whole study consumes: generations 1..generations-1 each take their own."""
    return regime.fresh_per_generation(n_human) * (generations - 1)


def check_fresh(regime: RegimeConfig, generations: int, n_human: int, n_fresh: int, fresh_fraction: float) -> None:
    """Refuse, before any compute, a study that needs more fresh human sequences than the text reserve of
    `n_fresh` (the `data.fresh_fraction` split) holds."""
    need = fresh_needed(regime, generations, n_human)
    if need > n_fresh:
        raise ConfigError("data.fresh_fraction", f"needs {need} fresh human sequences over {generations} generations "
                          f"({regime.fresh_per_generation(n_human)} per generation) but the reserve "
                          f"data.fresh_fraction={fresh_fraction} holds {n_fresh}; raise data.fresh_fraction or "
                          "lower generations")
