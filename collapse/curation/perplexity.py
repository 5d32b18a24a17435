"""`curate=perplexity`: keep a quantile band of the candidates by their perplexity per generated token under a
model (Gambetta et al.; Qiao et al.): generation 0's (`model=gen0`) or the generation's own (`current`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.checks import check, one_of
from collapse.curation import scores, select
from collapse.curation.base import CurateConfig, Drawing, Synthesis


@dataclass(frozen=True)
class PerplexityCurateConfig(CurateConfig, option="perplexity"):
    """Keep a quantile band of the candidates by their perplexity under a model."""

    oversample: float = 2.0  # candidates drawn per kept sample
    model: str = "gen0"  # gen0 | current: the judge
    keep: str = "low"  # low (least surprising) | high (most surprising) | band (from band_start)
    band_start: float = 0.25  # keep=band: the kept quantiles are [band_start, band_start + 1 / oversample)

    def validate(self, has_truth: bool) -> None:
        select.check_oversample(self.oversample, quantile=True)
        one_of(self.model, "curate.model", ("gen0", "current"))
        one_of(self.keep, "curate.keep", ("low", "high", "band"))
        if self.keep == "band":
            top = 1 - 1 / self.oversample
            check(0 <= self.band_start <= top + 1e-12, "curate.band_start", f"the band [band_start, band_start + "
                  f"1/oversample) must fit in [0, 1]: band_start in [0, {top:.4g}], got {self.band_start}")

    def candidates(self, n: int) -> int:
        return select.oversampled(self.oversample, n)

    def scores(self, d: Drawing, k: int, tokens_RMT: np.ndarray) -> np.ndarray:
        """Perplexity per generated token `[R, M]` under the judge."""
        return scores.perplexity(d.logprob(self.model, tokens_RMT), tokens_RMT.shape[2] - d.P)

    def curate(self, d: Drawing) -> Synthesis:
        return select.by_scores(self.candidates(d.n), d, self.scores, self.keep, self.band_start)
