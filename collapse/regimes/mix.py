"""`regime=mix`: a share `human_fraction` of human data, the rest from the newest generation's samples
(Shumailov et al. 2024's 10 % original data; with `fresh=true`, never-seen human data every generation,
Alemohammad et al. 2024's fresh-data loop: generation g takes rows (g - 1) n_h .. g n_h of the fresh reserve).

`human_weight` w weights the fit instead of leaving each row's weight to its count (He et al. 2025, "Golden ratio
weighting prevents model collapse", arXiv 2502.18049): the estimate is w · (the fit to the n_h human rows) +
(1 − w) · (the fit to the n_s synthetic rows), i.e. per-row weights w·n/n_h and (1 − w)·n/n_s, which sum to n,
so the fit's scale does not change with w; `golden` is their optimum w* = (√(k² + 4k) − k) / 2 with k = n_h / n_s
(1/φ ≈ 0.618 at k = 1), against the proportional weight k / (1 + k) of an unweighted fit. The analytic families
fit with these weights; the transformer weights each row's loss (tokens, soft and mixed targets alike)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from collapse.errors import ConfigError
from collapse.regimes.base import RegimeConfig, TrainingSet, concat, take
from collapse.checks import check, fraction, non_negative


def golden_weight(k: float) -> float:
    """He et al.'s optimal weight of the real data, w* = (√(k² + 4k) − k) / 2, for k = n_real / n_synthetic."""
    return (math.sqrt(k * k + 4 * k) - k) / 2


@dataclass(frozen=True)
class MixConfig(RegimeConfig, option="mix"):
    """A fraction of human data, the rest from the newest generation's samples."""

    human_fraction: float = 0.1
    fresh: bool = False  # False: drawn from the original train split; True: never-seen human data
    size: int = 0  # sequences (0 = as many as the human train split)
    human_weight: str = ""  # "" each row weighs 1 | golden | a number in (0, 1): the human rows' share of the fit
    LATER: ClassVar[dict[str, Any]] = {**RegimeConfig.LATER, "human_weight": ""}  # config.json: not at default

    def validate(self) -> None:
        non_negative(self, "regime", "size")
        fraction(self.human_fraction, "regime.human_fraction")
        if self.human_weight:
            if self.human_weight != "golden":
                try:
                    w = float(self.human_weight)
                except ValueError:
                    w = math.nan
                check(0 < w < 1, "regime.human_weight", f"is golden or a weight in (0, 1), got {self.human_weight!r}")
            check(0 < self.human_fraction < 1, "regime.human_weight", "weights human against synthetic rows: "
                  f"set 0 < regime.human_fraction < 1, got {self.human_fraction}")

    def weight(self, n_human: int) -> float | None:
        """The human rows' weight w in the fit (None: every row weighs 1)."""
        return self._w(*self.counts(n_human))

    def _w(self, n_h: int, n_s: int) -> float | None:
        if not self.human_weight:
            return None
        return golden_weight(n_h / n_s) if self.human_weight == "golden" else float(self.human_weight)

    def loss_weights(self, provenance_N: np.ndarray) -> np.ndarray | None:
        """w·n/n_h for each human row (provenance -1), (1 − w)·n/n_s for each synthetic one: mean 1."""
        human_N = np.asarray(provenance_N) < 0
        n, n_h = len(human_N), int(human_N.sum())
        w = self._w(n_h, n - n_h)
        return None if w is None else np.where(human_N, w * n / n_h, (1 - w) * n / (n - n_h)).astype(np.float32)

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
        if self.human_weight and not 0 < n_h < n_h + n_s:
            raise ConfigError("regime.human_weight", f"weights {n_h} human against {n_s} synthetic rows: both "
                              "need rows (raise regime.human_fraction or the training set's size)")

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
        w_N = self.loss_weights(np.r_[np.full(n_h, -1), np.zeros(n_s)])  # human points first, as in `part`
        return ctx.stats(part, None if w_N is None else jax.numpy.asarray(w_N)), {}
