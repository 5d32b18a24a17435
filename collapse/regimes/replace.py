"""`regime=replace`: generation g trains on generation g - 1's samples only (Shumailov et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.regimes.base import RegimeConfig, TrainingSet, take


@dataclass(frozen=True)
class ReplaceConfig(RegimeConfig, option="replace"):
    """Only the newest generation's samples."""

    def human_share(self) -> float:
        return 0.0

    def training_size(self, g: int, n_human: int, n_synthetic: int) -> int:
        return n_synthetic

    def build(self, g, human, fresh, synthetic, rng) -> TrainingSet:
        return take(synthetic[-1], g - 1, np.arange(len(synthetic[-1])))

    def analytic_form(self) -> None:
        return None

    def analytic_stats(self, ctx, carry, newest, g, key):
        return ctx.stats(newest), {}
