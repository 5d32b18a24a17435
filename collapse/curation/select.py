"""Which candidates join the pool: n of M by their scores (quantile bands, thresholds with further rounds), and
the shared parts of the curation options that select by a score (`by_scores`).

Candidates are exchangeable draws of the model, so a selection may keep them in any order that does not
depend on the scores beyond the choice itself: kept rows stay in candidate order (quantile bands, the first
n to pass a threshold). Kept indices may repeat (a resampling selection draws with repeats).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from collapse.checks import check
from collapse.curation.base import Curated, Drawing, Synthesis
from collapse.errors import StudyStopped


def oversampled(oversample: float, n: int) -> int:
    """M = ceil(oversample · n) candidates for n kept samples (a float product such as 1.1 · 100 =
    110.00000000000001 is 110)."""
    return max(n, math.ceil(oversample * n - 1e-9))


def check_oversample(oversample: float, quantile: bool) -> None:
    check(oversample >= 1, "curate.oversample", f"candidates drawn per kept sample: must be >= 1, got {oversample}")
    check(not quantile or oversample > 1, "curate.oversample", "1 keeps every candidate, so a quantile selects "
          "nothing: raise curate.oversample (or choose curate=none)")


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


def select(n: int, scored_round: Callable[[int], np.ndarray], keep: str = "high", band_start: float = 0.0,
           threshold: float | None = None, max_rounds: int = 1, where: str = "") -> list[Curated]:
    """Every replicate's selection of n candidates. `scored_round(k)` draws round k's candidates and returns
    their scores `[R, M]`. Without a `threshold`, round 0 alone and a quantile band (`keep`, `band_start`);
    with one, rounds while some replicate has fewer than n candidates at or above it, up to `max_rounds` (then
    `StudyStopped`); each replicate keeps the candidates of the fewest rounds that give it n."""
    if threshold is None:
        scores_RM = np.asarray(scored_round(0), np.float64)
        return [Curated(kept, s_M, s_M[kept]) for s_M in scores_RM
                for kept in [select_quantile(s_M, n, keep, band_start)]]
    rounds = []
    while True:
        rounds.append(np.asarray(scored_round(len(rounds)), np.float64))
        passed_RK = np.stack([(s_RM >= threshold).sum(axis=1) for s_RM in rounds], axis=1)
        if (passed_RK.sum(axis=1) >= n).all():
            break
        if len(rounds) >= max_rounds:
            r = int(np.argmin(passed_RK.sum(axis=1)))
            drawn = sum(s_RM.shape[1] for s_RM in rounds)
            passed = int(passed_RK[r].sum())
            raise StudyStopped(f"{where}only {passed} of {drawn} candidates ({passed / drawn:.3g}) of replicate {r} "
                               f"scored >= {threshold} in {len(rounds)} rounds (curate.max_rounds) of "
                               f"{rounds[0].shape[1]}, and {n} are needed; the finished generations are intact. "
                               "A lower curate.threshold or a higher curate.oversample or curate.max_rounds "
                               "changes the study: run it in a new out_dir")
    out = []
    for r, passed_K in enumerate(passed_RK):
        k = int(np.searchsorted(np.cumsum(passed_K), n)) + 1  # the fewest rounds with n passes
        scores_M = np.concatenate([s_RM[r] for s_RM in rounds[:k]])
        kept = select_threshold(scores_M, n, threshold)
        out.append(Curated(kept, scores_M, scores_M[kept], passed=int((scores_M >= threshold).sum())))
    return out


def by_scores(M: int, d: Drawing, score: Callable[[Drawing, int, np.ndarray], np.ndarray], keep: str,
              band_start: float = 0.0, threshold: float | None = None, max_rounds: int = 1) -> Synthesis:
    """The synthetic data of an option that selects by a score: rounds of M candidates (`d.draw`), scored by
    `score(d, round, tokens [R, M, T]) -> [R, M]`, n kept per replicate (`select`)."""
    rounds = []

    def scored_round(k: int) -> np.ndarray:
        rounds.append(d.draw(M, k))
        return score(d, k, rounds[-1][0])

    curated = select(d.n, scored_round, keep, band_start, threshold, max_rounds, d.where)
    used = [len(cur.scores_M) // M for cur in curated]  # rounds each replicate drew from
    candidates = [np.concatenate([tokens_RMT[r] for tokens_RMT, _ in rounds[:k]]) for r, k in enumerate(used)]
    kept = [cand[cur.kept_n] for cand, cur in zip(candidates, curated)]
    index = None if not d.P else [np.concatenate([ix[r] for _, ix in rounds[:k]])[cur.kept_n]
                                  for r, (k, cur) in enumerate(zip(used, curated))]
    return Synthesis(candidates, kept, index, curated)


def corrections(before_NT: np.ndarray, after_NT: np.ndarray, first: int) -> tuple[int, int]:
    """(tokens changed, tokens compared) at the generated positions first..T-1 of two corpora `[N, T]`."""
    return int((before_NT[:, first:] != after_NT[:, first:]).sum()), before_NT[:, first:].size
