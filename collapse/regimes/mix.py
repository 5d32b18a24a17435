"""`regime=mix`: a share `human_fraction` of human data, the rest from the newest generation's samples
(Shumailov et al. 2024's 10 % original data; with `fresh=true`, never-seen human data every generation,
Alemohammad et al. 2024's fresh-data loop: generation g takes rows (g - 1) n_h .. g n_h of the fresh reserve)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.errors import ConfigError
from collapse.regimes.base import RegimeConfig, TrainingSet, concat, take
from collapse.checks import fraction, non_negative


@dataclass(frozen=True)
class MixConfig(RegimeConfig, option="mix"):
    """A fraction of human data, the rest from the newest generation's samples."""

    human_fraction: float = 0.1
    fresh: bool = False  # False: drawn from the original train split; True: never-seen human data
    size: int = 0  # sequences (0 = as many as the human train split)

    def validate(self) -> None:
        non_negative(self, "regime", "size")
        fraction(self.human_fraction, "regime.human_fraction")

    def counts(self, n_human: int) -> tuple[int, int]:
        """(human, synthetic) sequences of a training set of `size` with the human share `human_fraction`."""
        n = self.size or n_human
        n_h = int(round(self.human_fraction * n))
        return n_h, n - n_h

    def training_size(self, g: int, n_human: int, n_synthetic: int) -> int:
        return self.size or n_human

    def check_sizes(self, n_human: int, n_synthetic: int, synthetic_key: str) -> None:
        n_h, n_s = self.counts(n_human)
        if n_s > n_synthetic:
            raise ConfigError("regime.size", f"needs {n_s} synthetic sequences per generation but "
                              f"{synthetic_key} gives {n_synthetic}")
        if not self.fresh and n_h > n_human:
            raise ConfigError("regime.size", f"needs {n_h} human sequences but the train split has {n_human}")

    def fresh_per_generation(self, n_human: int) -> int:
        return self.counts(n_human)[0] if self.fresh else 0

    def build(self, g, human, fresh, synthetic, rng) -> TrainingSet:
        n_h, n_s = self.counts(len(human))
        if self.fresh:
            rows = np.arange((g - 1) * n_h, g * n_h)
            assert len(fresh) >= g * n_h, "the fresh reserve is checked by check_fresh before any compute"
            human_part = TrainingSet(fresh[rows], np.full(n_h, -1, np.int32), rows + len(human))
        else:
            human_part = take(human, -1, np.sort(rng.choice(len(human), n_h, replace=False)))
        newest = synthetic[-1]
        return concat([human_part, take(newest, g - 1, np.sort(rng.choice(len(newest), n_s, replace=False)))])

    def analytic_form(self) -> None:
        return None

    def analytic_stats(self, ctx, carry, newest, g, key):
        import jax

        n_h, n_s = self.counts(ctx.M)
        k_human, k_synthetic = jax.random.split(key)
        if self.fresh:
            part = ctx.fam.human(ctx.m, ctx.truth, k_human, n_h)
        else:
            part = ctx.take(ctx.human, jax.random.choice(k_human, ctx.M, (n_h,), replace=False))
        part = ctx.concat(part, ctx.take(newest, jax.random.choice(k_synthetic, ctx.M, (n_s,), replace=False)))
        return ctx.stats(part), {}
