"""`curate=verifier`: keep the candidates a verifier scores best (Feng et al., ICLR 2025): the exact true
log-probability per generated token (`scorer=truth`, the grammar), its log-ratio to the sampling model's
(`truth_ratio`), or a user's function `package.module:function`, plus Gaussian noise of std `noise` (an
imperfect verifier); the n best of M (`select=quantile`) or the first n at or above `threshold`, drawing
further rounds of M as needed (`select=threshold`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.checks import check, non_negative, one_of, positive
from collapse.curation import scores, select
from collapse.curation.base import CurateConfig, Curated, Drawing, Synthesis
from collapse.errors import ConfigError


@dataclass(frozen=True)
class VerifierCurateConfig(CurateConfig, option="verifier"):
    """Keep the candidates a verifier scores best."""

    oversample: float = 2.0  # candidates drawn per kept sample (per round in select=threshold)
    scorer: str = "truth"  # truth | truth_ratio (data=grammar: log p_true, log p_true - log q_model) | package.module:function
    noise: float = 0.0  # std of the Gaussian noise added to every score
    select: str = "quantile"  # quantile (the n best of M) | threshold (the first n scoring >= threshold)
    threshold: float = -3.5  # select=threshold: the lowest score admitted (truth: nats per token)
    max_rounds: int = 4  # select=threshold: rounds of M candidates at most before giving up

    def validate(self, has_truth: bool) -> None:
        select.check_oversample(self.oversample, quantile=self.select != "threshold")
        one_of(self.select, "curate.select", ("quantile", "threshold"))
        non_negative(self, "curate", "noise")
        if self.select == "threshold":
            positive(self, "curate", "max_rounds")
        if self.scorer in ("truth", "truth_ratio"):
            check(has_truth, "curate.scorer", f"{self.scorer} scores by the exact truth, which only data=grammar "
                  "has; on text give a verifier as an import path, curate.scorer=package.module:function")
            return
        from collapse.curation.plugin import load_scorer

        try:
            load_scorer(self.scorer)
        except Exception as e:  # any failure to import the user's module
            raise ConfigError("curate.scorer", f"truth, truth_ratio or package.module:function (fn(tokens_NT, "
                              f"prompt_tokens) -> scores [N], higher = better); {self.scorer!r} does not load "
                              f"({type(e).__name__}: {e})") from None

    def candidates(self, n: int) -> int:
        return select.oversampled(self.oversample, n)

    def scores(self, d: Drawing, k: int, tokens_RMT: np.ndarray) -> np.ndarray:
        """The verifier's scores `[R, M]` of round k's candidates plus its noise (key: the replicate's curation
        key, round k)."""
        generated = tokens_RMT.shape[2] - d.P
        from collapse.rng import for_round, numpy_rng  # JAX: imported when a study runs
        own_RM = d.logprob("current", tokens_RMT) if self.scorer == "truth_ratio" else None
        out = []
        for r, human in enumerate(d.humans):
            if self.scorer in ("truth", "truth_ratio"):
                s_M = scores.truth(human.truth, tokens_RMT[r], d.P)
                s_M = s_M if own_RM is None else scores.log_ratio(s_M, own_RM[r], generated)
            else:
                s_M = scores.user(self.scorer, tokens_RMT[r], d.P)
            out.append(scores.noisy(s_M, self.noise, numpy_rng(for_round(d.keys[r], k))))
        return np.stack(out)

    def curate(self, d: Drawing) -> Synthesis:
        threshold = self.threshold if self.select == "threshold" else None
        return select.by_scores(self.candidates(d.n), d, self.scores, "high", threshold=threshold,
                                max_rounds=self.max_rounds)

    def restore(self, prompt_tokens, candidates_MT, kept_NT, fields) -> Curated:
        passed = int((fields["scores_M"] >= self.threshold).sum()) if self.select == "threshold" else None
        return Curated(**fields, passed=passed)
