"""`regime=accumulate`: generation g trains on all human data and every sample so far; the set grows
(Gerstgrasser et al. 2024). With `human_fraction` h: all samples so far, S sequences, plus the human train split
repeated to round(h S / (1 - h)) sequences, so that human data is the share h of every training set (h = 1:
the human train split alone)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.regimes.base import RegimeConfig, TrainingSet, all_samples, concat, pick, take
from collapse.checks import fraction


@dataclass(frozen=True)
class AccumulateConfig(RegimeConfig, option="accumulate"):
    """All human data plus all synthetic data so far; the training set grows."""

    human_fraction: float | None = None

    def validate(self) -> None:
        if self.human_fraction is not None:
            fraction(self.human_fraction, "regime.human_fraction")

    def counts(self, n_samples: int, n_human: int) -> tuple[int, int]:
        """(human, synthetic) sequences with `human_fraction` h over `n_samples` samples so far."""
        h = self.human_fraction
        if h == 1:
            return n_human, 0
        return int(round(h * n_samples / (1 - h))), n_samples

    def training_size(self, g: int, n_human: int, n_synthetic: int) -> int:
        if self.human_fraction is None:
            return n_human + g * n_synthetic
        return sum(self.counts(g * n_synthetic, n_human))

    def build(self, g, human, fresh, synthetic, rng) -> TrainingSet:
        samples = all_samples(synthetic)
        if self.human_fraction is None:
            return concat([take(human, -1, np.arange(len(human))), samples])
        n_h, n_s = self.counts(len(samples.tokens), len(human))  # h = 1: no samples
        rows = np.concatenate([np.tile(np.arange(len(human)), n_h // len(human)),
                               np.sort(rng.choice(len(human), n_h % len(human), replace=False))])
        return concat([take(human, -1, rows), pick(samples, np.arange(n_s))])

    def keeps_points(self, combine) -> bool:
        return combine is None  # a fit from statistics keeps a running total instead

    def analytic_form(self) -> str | None:
        if self.human_fraction is not None:
            return ("the analytic families take a human share under regime=mix only; drop regime.human_fraction "
                    "from regime=accumulate")
        return None

    def analytic_init(self, ctx, human_stats) -> dict:
        return {} if self.keeps_points(ctx.fam.combine) else {"pool": human_stats}

    def analytic_stats(self, ctx, carry, newest, g, key):
        if "pool" in carry:
            pool = ctx.fam.combine(carry["pool"], ctx.stats(newest))
            return pool, {"pool": pool}
        return ctx.stats(carry["buffer"], ctx.filled(g)), {}
