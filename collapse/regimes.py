"""Data regimes: which pools make generation k's training set, with the provenance of every example.

Provenance is -1 for human data and j for data sampled by generation j. `index` is the row in its pool:
for human rows, the pool is the train split followed by the fresh reserve (so a fresh row has
index >= len(train): generation g >= 1 of regime=mix fresh=true takes len(train) + (g-1)*n_h up to
len(train) + g*n_h); for synthetic rows, generation j's samples. Generation 0 always trains on the
human train split. All functions are pure given the NumPy generator.

`human_fraction` is the human share of every training set of generation >= 1 under `mix` and, when set, under
`accumulate_subsample` (round(h size) human sequences, the rest uniform over all samples so far) and
`accumulate` (all samples so far plus the human train split repeated to the share h; h = 1: human data
alone), so one number compares the three ways of keeping synthetic data: the newest generation's (mix, i.e.
replace plus human data), a fixed-size subsample of all of them, or all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.config import AccumulateConfig, AccumulateSubsampleConfig, MixConfig, RegimeConfig, ReplaceConfig
from collapse.errors import ConfigError


@dataclass(frozen=True)
class TrainingSet:
    tokens: np.ndarray  # [N, T]
    provenance: np.ndarray  # [N] int32: -1 human, j synthetic from generation j
    index: np.ndarray  # [N] int64: row within the example's pool

    def counts(self) -> dict[str, int]:
        """Examples by origin: {"human": n, "gen_0": n, ...}."""
        values, counts = np.unique(self.provenance, return_counts=True)
        return {("human" if v < 0 else f"gen_{v}"): int(c) for v, c in zip(values, counts)}


def training_size(regime: RegimeConfig, generation: int, n_human: int, n_synthetic: int) -> int:
    """Sequences in generation k's training set (closed form, for checks before any compute)."""
    if generation == 0:
        return n_human
    if isinstance(regime, ReplaceConfig):
        return n_synthetic
    if isinstance(regime, AccumulateConfig):
        if regime.human_fraction is None:
            return n_human + generation * n_synthetic
        return sum(accumulate_counts(regime, generation * n_synthetic, n_human))
    if isinstance(regime, (AccumulateSubsampleConfig, MixConfig)):
        return regime.size or n_human
    raise TypeError(f"unknown regime {regime!r}")


def human_share(regime: RegimeConfig) -> float | None:
    """The human share h of every training set of generation >= 1 that the regime fixes (None: not fixed)."""
    return getattr(regime, "human_fraction", None)


def accumulate_counts(regime: AccumulateConfig, n_samples: int, n_human: int) -> tuple[int, int]:
    """(human, synthetic) sequences of `accumulate` with `human_fraction` h over `n_samples` samples so far."""
    h = regime.human_fraction
    if h == 1:
        return n_human, 0
    return int(round(h * n_samples / (1 - h))), n_samples


def mix_counts(regime: MixConfig | AccumulateSubsampleConfig, n_human: int) -> tuple[int, int]:
    """(human, synthetic) sequences in a training set of `size` with the human share `human_fraction` (mix, and
    accumulate_subsample with a human_fraction)."""
    n = regime.size or n_human
    n_h = int(round(regime.human_fraction * n))
    return n_h, n - n_h


def fresh_per_generation(regime: RegimeConfig, n_human: int) -> int:
    """Never-seen human sequences each generation >= 1 takes from the fresh reserve (regime=mix fresh=true);
    `n_human` is the human train size, which fixes the mix."""
    if isinstance(regime, MixConfig) and regime.fresh:
        return mix_counts(regime, n_human)[0]
    return 0


def fresh_needed(regime: RegimeConfig, generations: int, n_human: int) -> int:
    """Never-seen human sequences the whole study consumes: generations 1..generations-1 each take their own."""
    return fresh_per_generation(regime, n_human) * (generations - 1)


def check_fresh(regime: RegimeConfig, generations: int, n_human: int, n_fresh: int, fresh_fraction: float) -> None:
    """Refuse, before any compute, a study that needs more fresh human sequences than the text reserve of
    `n_fresh` (the `data.fresh_fraction` split) holds."""
    need = fresh_needed(regime, generations, n_human)
    if need > n_fresh:
        raise ConfigError("data.fresh_fraction", f"needs {need} fresh human sequences over {generations} generations "
                          f"({fresh_per_generation(regime, n_human)} per generation) but the reserve "
                          f"data.fresh_fraction={fresh_fraction} holds {n_fresh}; raise data.fresh_fraction or "
                          "lower generations")


def check_sizes(regime: RegimeConfig, generations: int, n_human: int, n_synthetic: int, batch_size: int,
                synthetic_key: str = "sample.num_sequences") -> None:
    """Refuse, before any compute, a study whose training sets cannot be built or batched (`synthetic_key`:
    the config key that sets the synthetic corpus size)."""
    if isinstance(regime, AccumulateSubsampleConfig) and regime.size > n_human + n_synthetic:
        raise ConfigError("regime.size", f"{regime.size} exceeds the {n_human + n_synthetic} sequences "
                          "available at generation 1 (human train + one generation of samples)")
    if isinstance(regime, AccumulateSubsampleConfig) and regime.human_fraction is not None:
        n_h, n_s = mix_counts(regime, n_human)
        if n_h > n_human or n_s > n_synthetic:
            raise ConfigError("regime.size", f"needs {n_h} human and {n_s} synthetic sequences at generation 1 "
                              f"but the train split has {n_human} and {synthetic_key} gives {n_synthetic}")
    if isinstance(regime, MixConfig):
        n_h, n_s = mix_counts(regime, n_human)
        if n_s > n_synthetic:
            raise ConfigError("regime.size", f"needs {n_s} synthetic sequences per generation but "
                              f"{synthetic_key} gives {n_synthetic}")
        if not regime.fresh and n_h > n_human:
            raise ConfigError("regime.size", f"needs {n_h} human sequences but the train split has {n_human}")
    for g in range(generations if generations > 1 else 1):
        n = training_size(regime, g, n_human, n_synthetic)
        if n < batch_size:
            raise ConfigError("train.batch_size", f"{batch_size} exceeds the {n} training sequences of "
                              f"generation {g}")


def _take(pool: np.ndarray, provenance: int, index: np.ndarray) -> TrainingSet:
    return TrainingSet(pool[index], np.full(len(index), provenance, np.int32), index.astype(np.int64))


def _concat(parts: list[TrainingSet]) -> TrainingSet:
    return TrainingSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("tokens", "provenance", "index")))


def build(regime: RegimeConfig, generation: int, human: np.ndarray, fresh: np.ndarray,
          synthetic: list[np.ndarray], rng: np.random.Generator) -> TrainingSet:
    """Generation `generation`'s training set from the human train split, the fresh reserve and the
    samples of generations 0..generation-1 (`synthetic[j]` is generation j's corpus). With regime=mix
    fresh=true, generation g takes rows (g-1)*n_h .. g*n_h of `fresh` (n_h from the train size)."""
    all_human = lambda: _take(human, -1, np.arange(len(human)))  # noqa: E731
    if generation == 0:
        return all_human()
    newest = len(synthetic) - 1
    assert newest == generation - 1, "synthetic must hold one corpus per earlier generation"
    if isinstance(regime, ReplaceConfig):
        return _take(synthetic[newest], newest, np.arange(len(synthetic[newest])))
    if human_share(regime) is not None and isinstance(regime, (AccumulateConfig, AccumulateSubsampleConfig)):
        samples = _concat([_take(s, j, np.arange(len(s))) for j, s in enumerate(synthetic)])
        if isinstance(regime, AccumulateConfig):
            n_h, n_s = accumulate_counts(regime, len(samples.tokens), len(human))
            rows = np.concatenate([np.tile(np.arange(len(human)), n_h // len(human)),
                                   np.sort(rng.choice(len(human), n_h % len(human), replace=False))])
        else:
            n_h, n_s = mix_counts(regime, len(human))
            rows = np.sort(rng.choice(len(human), n_h, replace=False))
        pick = np.arange(n_s) if isinstance(regime, AccumulateConfig) else np.sort(
            rng.choice(len(samples.tokens), n_s, replace=False))
        return _concat([_take(human, -1, rows), TrainingSet(*(getattr(samples, f)[pick] for f in
                                                               ("tokens", "provenance", "index")))])
    if isinstance(regime, (AccumulateConfig, AccumulateSubsampleConfig)):
        pool = _concat([all_human()] + [_take(s, j, np.arange(len(s))) for j, s in enumerate(synthetic)])
        if isinstance(regime, AccumulateConfig):
            return pool
        pick = np.sort(rng.choice(len(pool.tokens), regime.size or len(human), replace=False))
        return TrainingSet(pool.tokens[pick], pool.provenance[pick], pool.index[pick])
    if isinstance(regime, MixConfig):
        n_h, n_s = mix_counts(regime, len(human))
        if regime.fresh:
            rows = np.arange((generation - 1) * n_h, generation * n_h)
            assert len(fresh) >= generation * n_h, "the fresh reserve is checked by check_fresh before any compute"
            human_part = TrainingSet(fresh[rows], np.full(n_h, -1, np.int32), rows + len(human))
        else:
            human_part = _take(human, -1, np.sort(rng.choice(len(human), n_h, replace=False)))
        synth_part = _take(synthetic[newest], newest,
                           np.sort(rng.choice(len(synthetic[newest]), n_s, replace=False)))
        return _concat([human_part, synth_part])
    raise TypeError(f"unknown regime {regime!r}")
