"""`regime=accumulate_subsample`: accumulate, but train on a fresh uniform subset of fixed `size` of everything
so far each generation (Kazdan et al. 2024: the compute of replace with the data of accumulate). With
`human_fraction` h: round(h size) human train sequences and the rest uniform over all samples so far."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.errors import ConfigError
from collapse.regimes.base import RegimeConfig, TrainingSet, all_samples, concat, pick, take
from collapse.checks import fraction, non_negative


@dataclass(frozen=True)
class AccumulateSubsampleConfig(RegimeConfig, option="accumulate_subsample"):
    """Accumulate, but train on a fresh uniform subset of fixed size each generation."""

    size: int = 0  # sequences (0 = as many as the human train split)
    human_fraction: float | None = None

    def validate(self) -> None:
        non_negative(self, "regime", "size")
        if self.human_fraction is not None:
            fraction(self.human_fraction, "regime.human_fraction")

    def counts(self, n_human: int) -> tuple[int, int]:
        """(human, synthetic) sequences of a training set with the human share `human_fraction`."""
        n = self.size or n_human
        n_h = int(round(self.human_fraction * n))
        return n_h, n - n_h

    def training_size(self, g: int, n_human: int, n_synthetic: int) -> int:
        return self.size or n_human

    def check_sizes(self, n_human: int, n_synthetic: int, synthetic_key: str) -> None:
        if self.size > n_human + n_synthetic:
            raise ConfigError("regime.size", f"{self.size} exceeds the {n_human + n_synthetic} sequences "
                              "available at generation 1 (human train + one generation of samples)")
        if self.human_fraction is not None:
            n_h, n_s = self.counts(n_human)
            if n_h > n_human or n_s > n_synthetic:
                raise ConfigError("regime.size", f"needs {n_h} human and {n_s} synthetic sequences at generation 1 "
                                  f"but the train split has {n_human} and {synthetic_key} gives {n_synthetic}")

    def build(self, g, human, fresh, synthetic, rng) -> TrainingSet:
        if self.human_fraction is not None:
            samples = all_samples(synthetic)
            n_h, n_s = self.counts(len(human))
            rows = np.sort(rng.choice(len(human), n_h, replace=False))
            chosen = np.sort(rng.choice(len(samples.tokens), n_s, replace=False))
            return concat([take(human, -1, rows), pick(samples, chosen)])
        pool = concat([take(human, -1, np.arange(len(human))), all_samples(synthetic)])
        return pick(pool, np.sort(rng.choice(len(pool.tokens), self.size or len(human), replace=False)))

    def keeps_points(self, combine) -> bool:
        return True

    def analytic_form(self) -> str | None:
        if self.human_fraction is not None:
            return ("the analytic families take a human share under regime=mix only; drop regime.human_fraction "
                    "from regime=accumulate_subsample")
        return None

    def analytic_stats(self, ctx, carry, newest, g, key):
        size = self.size or ctx.M
        chosen = ctx.subset(key, (g + 1) * ctx.M, size)
        return ctx.stats(ctx.take(carry["buffer"], chosen)), {}
