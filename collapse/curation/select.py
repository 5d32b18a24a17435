"""Which candidates join the pool: n of M by their scores, and a summary of what was kept (`Curated`).

Candidates are exchangeable draws of the model, so a selection may keep them in any order that does not
depend on the scores beyond the choice itself: kept rows stay in candidate order (quantile bands, the first
n to pass a threshold). Kept indices may repeat (a resampling selection draws with repeats).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collapse.config import (CurateConfig, DetectorCurateConfig, NoCurateConfig, PerplexityCurateConfig,
                             VerifierCurateConfig)
from collapse.curation import detector
from collapse.errors import StudyStopped


@dataclass(frozen=True)
class Curated:
    """One replicate's curation of one generation."""

    kept_n: np.ndarray  # [n] int64: the candidate of each kept row, in training-set order (may repeat)
    scores_M: np.ndarray  # [M] float64: every candidate drawn, all rounds, before curation
    kept_scores_n: np.ndarray  # [n] float64: the kept rows as they join the pool (corrected rows rescored)
    passed: int | None = None  # select=threshold: candidates drawn that scored >= the threshold
    changed: int | None = None  # correct: tokens replaced ...
    generated: int = 0  # ... of this many generated tokens
    accuracy: float | None = None  # detector: its held-out balanced accuracy (mean of the two cross-fits)
    used: float | None = None  # detector: share of the two cross-fits that beat chance (the others score 1/2)
    ess: float | None = None  # detector: effective sample size of the resampling weights / M

    def metrics(self) -> dict[str, float]:
        """The curation rows of metrics.jsonl (docs/metrics.md, "Curation")."""
        n, M, distinct = len(self.kept_n), len(self.scores_M), len(np.unique(self.kept_n))
        m = {"curate_acceptance": distinct / M, "curate_drawn_per_kept": M / n,
             "curate_score_mean_before": float(np.mean(self.scores_M)),
             "curate_score_mean_after": float(np.mean(self.kept_scores_n))}
        if self.passed is not None:
            m["curate_pass_rate"] = self.passed / M
        if self.changed is not None:
            m["curate_corrected_fraction"] = self.changed / self.generated
        if self.accuracy is not None:
            m["curate_detector_accuracy"] = self.accuracy
            m["curate_detector_used"] = self.used
            m["curate_ess"] = self.ess
            m["curate_unique_kept"] = distinct / n  # resampling keeps some rows twice
        return m


def candidates_per_round(cfg: CurateConfig, n: int) -> int:
    """M: candidates drawn (per round) for n kept samples: ceil(oversample · n) for the selections,
    ceil(n / upsample) for the detector's resampling (which may keep a candidate several times), n otherwise."""
    if isinstance(cfg, DetectorCurateConfig):
        return detector.n_candidates(n, cfg.upsample)
    factor = getattr(cfg, "oversample", 1.0)
    return max(n, math.ceil(factor * n - 1e-9))  # a float product such as 1.1 · 100 = 110.00000000000001 is 110


def thresholded(cfg: CurateConfig) -> bool:
    """Whether `cfg` selects by a threshold (rounds of candidates until n pass) rather than by quantile."""
    return isinstance(cfg, VerifierCurateConfig) and cfg.select == "threshold"


def select_quantile(scores_M: np.ndarray, n: int, keep: str, band_start: float = 0.0) -> np.ndarray:
    """The n candidates `[n]` (ascending) of a band of the ranking by score: `low` the n lowest, `high` the n
    highest, `band` ranks round(band_start · M) .. + n (ascending). Ties rank by index, lower first, and
    `high` ranks by descending score, so every choice is deterministic."""
    M = len(scores_M)
    assert 0 < n <= M, (n, M)
    scores_M = np.asarray(scores_M)
    order_M = np.argsort(-scores_M if keep == "high" else scores_M, kind="stable")
    start = {"low": 0, "high": 0, "band": min(int(round(band_start * M)), M - n)}[keep]
    return np.sort(order_M[start:start + n]).astype(np.int64)


def select_threshold(scores_M: np.ndarray, n: int, threshold: float) -> np.ndarray:
    """The first (at most) n candidates scoring >= `threshold` `[<= n]` (rejection sampling: candidates are
    exchangeable, so the first n to pass are a sample of the accepted distribution)."""
    return np.flatnonzero(np.asarray(scores_M) >= threshold)[:n].astype(np.int64)


def importance_ess(p_synthetic_M: np.ndarray, cfg: DetectorCurateConfig) -> float:
    """The effective sample size of the resampling weights as a share of the M candidates (1: uniform)."""
    return detector.effective_sample_size(detector.importance_weights(p_synthetic_M, cfg.bias)) / len(p_synthetic_M)


def select_importance(p_synthetic_M: np.ndarray, n: int, cfg: DetectorCurateConfig, rng: np.random.Generator,
                      where: str = "") -> np.ndarray:
    """n candidates `[n]` (ascending, with repeats) resampled toward human-like ones by their detector scores
    (`detector.importance_weights`, `detector.resample`: Drayson et al. 2025)."""
    try:
        kept = detector.resample(rng, detector.importance_weights(p_synthetic_M, cfg.bias), n, cfg.max_repeats)
    except ValueError as e:  # every candidate detected with certainty: the weights cannot fill the budget
        raise StudyStopped(f"{where}{e}; the finished generations are intact. A lower curate.bias or a higher "
                           "curate.max_repeats changes the study: run it in a new out_dir") from None
    return np.sort(kept).astype(np.int64)


def select(cfg: CurateConfig, n: int, scored_round: Callable[[int], np.ndarray], where: str = "") -> list[Curated]:
    """Every replicate's selection of n candidates. `scored_round(k)` draws round k's candidates and returns
    their scores `[R, M]`. Quantile options score round 0 alone; `select=threshold` draws rounds while some
    replicate has fewer than n candidates at or above the threshold, up to `max_rounds` (then `StudyStopped`
    with the acceptance seen); each replicate keeps the candidates of the fewest rounds that give it n."""
    assert not isinstance(cfg, NoCurateConfig)
    if not thresholded(cfg):
        keep, start = (cfg.keep, cfg.band_start) if isinstance(cfg, PerplexityCurateConfig) else ("high", 0.0)
        scores_RM = np.asarray(scored_round(0), np.float64)
        return [Curated(kept, s_M, s_M[kept]) for s_M in scores_RM
                for kept in [select_quantile(s_M, n, keep, start)]]
    t, rounds = cfg.threshold, []
    while True:
        rounds.append(np.asarray(scored_round(len(rounds)), np.float64))
        passed_RK = np.stack([(s_RM >= t).sum(axis=1) for s_RM in rounds], axis=1)
        if (passed_RK.sum(axis=1) >= n).all():
            break
        if len(rounds) >= cfg.max_rounds:
            r = int(np.argmin(passed_RK.sum(axis=1)))
            drawn = sum(s_RM.shape[1] for s_RM in rounds)
            passed = int(passed_RK[r].sum())
            raise StudyStopped(f"{where}only {passed} of {drawn} candidates ({passed / drawn:.3g}) of replicate {r} "
                               f"scored >= {t} in {len(rounds)} rounds (curate.max_rounds) of {rounds[0].shape[1]}, "
                               f"and {n} are needed; the finished generations are intact. A lower curate.threshold "
                               "or a higher curate.oversample or curate.max_rounds changes the study: run it in a "
                               "new out_dir")
    out = []
    for r, passed_K in enumerate(passed_RK):
        k = int(np.searchsorted(np.cumsum(passed_K), n)) + 1  # the fewest rounds with n passes
        scores_M = np.concatenate([s_RM[r] for s_RM in rounds[:k]])
        kept = select_threshold(scores_M, n, t)
        out.append(Curated(kept, scores_M, scores_M[kept], passed=int((scores_M >= t).sum())))
    return out


def corrections(before_NT: np.ndarray, after_NT: np.ndarray, first: int) -> tuple[int, int]:
    """(tokens changed, tokens compared) at the generated positions first..T-1 of two corpora `[N, T]`."""
    return int((before_NT[:, first:] != after_NT[:, first:]).sum()), before_NT[:, first:].size
