"""Tail-token forgetting: how a corpus' (or a model's) mass over the vocabulary drifts from a reference
unigram, with the types cut into frequency buckets (head / torso / tail) by their reference mass.

A reference `ref_V` is any non-negative mass per type: human token counts or exact probabilities.

Shape suffixes: the package's (collapse/__init__.py), and X any trailing axes (`last_seen`: the vocabulary of
each replicate).
"""

from __future__ import annotations

import numpy as np

from collapse.metrics.families import Family, declare

# Against the human data's frame, and against the truth's (`_true`): the same metrics, two references.
declare(Family("tails", "Tail forgetting (against the human data)", 2,
               ("*_mass_ratio", "*_mass_ratio_model", "survival", "survival_*", "kl_unigram", "zipf_exponent"),
               headline=("tail_mass_ratio", "survival", "tail_mass_ratio_true", "survival_true")))
declare(Family("tails_true", "Tail forgetting (against the truth)", 3,
               ("*_mass_ratio_true", "*_mass_ratio_model_true", "survival_true", "survival_*_true", "kl_unigram_true")))

BUCKETS = ("head", "torso", "tail")


def buckets(ref_V: np.ndarray, head_mass: float, tail_mass: float) -> np.ndarray:
    """Bucket of each type `[V]` (0 head, 1 torso, 2 tail) by its reference mass.

    Types are ranked by mass (ties: lower id first). The head is the shortest prefix of the ranking that
    holds at least `head_mass` of the total, the tail the shortest suffix that holds at least `tail_mass`
    (so it also takes every type of zero reference mass); a type that would be in both is in the head.
    """
    ref_V = np.asarray(ref_V, np.float64)
    order = np.argsort(-ref_V, kind="stable")
    sorted_V, total = ref_V[order], ref_V.sum()
    cum_V = np.cumsum(sorted_V)
    more_frequent_V, rarer_V = cum_V - sorted_V, total - cum_V
    bucket_sorted = np.where(more_frequent_V < head_mass * total, 0, np.where(rarer_V < tail_mass * total, 2, 1))
    out = np.empty(len(ref_V), np.int8)
    out[order] = bucket_sorted
    return out


def bucket_mass(x_V: np.ndarray, buckets_V: np.ndarray) -> np.ndarray:
    """Share of the total of `x_V` (counts or a distribution) in each bucket `[3]`."""
    x_V = np.asarray(x_V, np.float64)
    return np.bincount(buckets_V, weights=x_V, minlength=len(BUCKETS)) / x_V.sum()


def mass_ratios(x_V: np.ndarray, ref_V: np.ndarray, buckets_V: np.ndarray, suffix: str = "") -> dict[str, float]:
    """`<bucket>_mass_ratio<suffix>`: the share of `x_V` in each bucket over the reference's share (1: no drift;
    inf or nan for a bucket the reference puts no mass in)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = bucket_mass(x_V, buckets_V) / bucket_mass(ref_V, buckets_V)
    return {f"{b}_mass_ratio{suffix}": float(v) for b, v in zip(BUCKETS, ratio)}


def survival(counts_V: np.ndarray, ref_V: np.ndarray, buckets_V: np.ndarray, suffix: str = "") -> dict[str, float]:
    """`survival<suffix>`: the share of reference types (reference mass > 0) that occur at least once in
    `counts_V`; `survival_<bucket><suffix>`: the same within each bucket (nan for a bucket without any)."""
    ref_types_V, seen_V = np.asarray(ref_V) > 0, np.asarray(counts_V) > 0
    out = {f"survival{suffix}": float(seen_V[ref_types_V].mean())}
    for i, b in enumerate(BUCKETS):
        in_bucket_V = ref_types_V & (buckets_V == i)
        out[f"survival_{b}{suffix}"] = float(seen_V[in_bucket_V].mean()) if in_bucket_V.any() else float("nan")
    return out


def kl_unigram(ref_V: np.ndarray, counts_V: np.ndarray, alpha: float) -> float:
    """KL(p || q) in nats from the reference unigram p = ref / sum(ref) to the add-alpha smoothed corpus
    unigram q = (counts + alpha) / (sum(counts) + alpha V); finite for any corpus, 0 only if p = q."""
    p_V = np.asarray(ref_V, np.float64) / np.sum(ref_V)
    counts_V = np.asarray(counts_V, np.float64)
    q_V = (counts_V + alpha) / (counts_V.sum() + alpha * len(counts_V))
    nz = p_V > 0
    return float(np.sum(p_V[nz] * (np.log(p_V[nz]) - np.log(q_V[nz]))))


def zipf_exponent(counts_V: np.ndarray, tol: float = 1e-10) -> float:
    """Maximum-likelihood Zipf exponent s of the rank-frequency curve: the tokens' ranks (types ranked by
    count, r = 1..K for the K types that occur) modelled as P(r) ∝ r^-s on 1..K.

    The likelihood is concave in s; its maximum solves E_s[log r] = the tokens' mean log rank, found by
    bisection (E_s[log r] falls monotonically in s). Weighting by counts lets the head, not the noisy
    singleton tail, set the slope. nan with fewer than two types; 0 when all types are equally frequent.
    """
    c_K = np.sort(np.asarray(counts_V, np.float64)[np.asarray(counts_V) > 0])[::-1]
    if len(c_K) < 2:
        return float("nan")
    log_r_K = np.log(np.arange(1, len(c_K) + 1))
    target = c_K @ log_r_K / c_K.sum()

    def mean_log_rank(s: float) -> float:
        w_K = np.exp(-s * log_r_K)
        return float(w_K @ log_r_K / w_K.sum())

    lo, hi = 0.0, 1.0
    if mean_log_rank(lo) <= target:
        return 0.0
    while mean_log_rank(hi) > target:
        lo, hi = hi, 2 * hi
    while hi - lo > tol * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_log_rank(mid) > target else (lo, mid)
    return (lo + hi) / 2


def last_seen(counts_GX: np.ndarray) -> np.ndarray:
    """The last index along axis 0 (the generation) with a non-zero count, for every other entry (-1: never)."""
    seen_GX = np.asarray(counts_GX) > 0
    last_X = len(seen_GX) - 1 - np.argmax(seen_GX[::-1], axis=0)
    return np.where(seen_GX.any(axis=0), last_X, -1).astype(np.int32)
