"""`curate=detector`: importance resampling by a human-vs-synthetic classifier (Drayson et al. 2025, "Machine-
generated text detection prevents language model collapse", code: github.com/GeorgeDrayson/model_collapse,
src/utils/data_selection_strategy.py). They score every synthetic example with a detector's probability of
being machine-written, p_i, and resample the synthetic data towards human-like examples:

    w_i = (1 - p_i)^bias                                  (bias = 10 in their importance_sampling.yaml)
    expanded = each candidate index repeated max_repeats times            (max_repeats = 3)
    draw n entries of `expanded` WITHOUT replacement, P(entry of i) ∝ w_i  (np.random.choice, replace=False)

so a candidate is kept 0..max_repeats times. NumPy's `choice(replace=False, p=...)` is successive sampling:
each draw picks among the entries not yet drawn with probability ∝ their weight.

Where we differ from the paper: the detector (`collapse.curation.classifier`: trained each generation,
calibrated, tested against chance, cross-fitted), and the budget: they upsample, drawing round(upsample · M)
examples from a dataset of M; we keep the synthetic budget n fixed, sample M = ceil(n / upsample) candidates
(`n_candidates`) and keep n of them.

Shape suffixes: the package's (collapse/__init__.py), and X the expanded entries (each candidate `max_repeats`
times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from collapse.checks import check, fraction, non_negative, positive
from collapse.curation.base import CurateConfig, Curated, Drawing, Synthesis
from collapse.errors import StudyStopped


@dataclass(frozen=True)
class DetectorCurateConfig(CurateConfig, option="detector"):
    """Importance resampling by a human-vs-synthetic classifier: weights (1 - p_synthetic)^bias, each candidate
    repeated at most `max_repeats` times."""

    upsample: float = 1.5  # kept samples per candidate drawn (M = ceil(n / upsample); each kept <= max_repeats)
    bias: float = 10.0  # β of the weights (1 - p_synthetic)^β
    max_repeats: int = 3  # times a candidate may be kept at most
    steps: int = 200  # classifier training steps (each detector of the two cross-fits)
    lr: float = 3e-3
    d_embed: int = 64
    holdout: float = 0.2  # share of each class held out to calibrate and test the classifier
    significance: float = 0.01  # used only if it beats chance on the held-out rows at this level (else uniform)

    def validate(self, has_truth: bool) -> None:
        check(self.upsample > 0, "curate.upsample", f"kept samples per candidate: must be > 0, got {self.upsample}")
        check(self.max_repeats >= 1, "curate.max_repeats", f"must be >= 1, got {self.max_repeats}")
        check(self.upsample <= self.max_repeats, "curate.upsample", f"{self.upsample} keeps more samples per "
              f"candidate than curate.max_repeats={self.max_repeats} allows")
        non_negative(self, "curate", "bias")
        positive(self, "curate", "steps", "d_embed")
        check(self.lr > 0, "curate.lr", f"must be > 0, got {self.lr}")
        check(0 < self.holdout < 1, "curate.holdout", f"must be in (0, 1): the held-out rows calibrate the "
              f"detector and test it against chance, got {self.holdout}")
        fraction(self.significance, "curate.significance", closed_low=False)

    def candidates(self, n: int) -> int:
        return n_candidates(n, self.upsample)

    def curate(self, d: Drawing) -> Synthesis:
        from collapse.curation import classifier
        from collapse.rng import for_round, numpy_rng

        M = self.candidates(d.n)
        # M < n: the metrics still measure an iid draw of n (the n - M beyond the candidates are only measured)
        tokens_RMT, index = d.draw(max(M, d.n), 0)
        curated = []
        for r, human in enumerate(d.humans):
            p_M, accuracy, used = classifier.cross_fitted(
                d.keys[r], human.train, tokens_RMT[r, :M], prompt_tokens=d.P, vocab_size=human.vocab_size,
                steps=self.steps, lr=self.lr, d_embed=self.d_embed, holdout=self.holdout,
                significance=self.significance)
            try:
                kept_n = np.sort(resample(numpy_rng(for_round(d.keys[r], 1)), importance_weights(p_M, self.bias), d.n,
                                          self.max_repeats)).astype(np.int64)
            except ValueError as e:  # every candidate detected with certainty: the weights cannot fill the budget
                raise StudyStopped(f"{d.where}{e}; the finished generations are intact. A lower curate.bias or a "
                                   "higher curate.max_repeats changes the study: run it in a new out_dir") from None
            curated.append(Curated(kept_n, p_M, p_M[kept_n], accuracy=accuracy, used=used, ess=self.ess(p_M)))
        kept = [tokens_RMT[r][cur.kept_n] for r, cur in enumerate(curated)]
        return Synthesis(list(tokens_RMT), kept, None if not d.P else [ix[cur.kept_n] for ix, cur in
                                                                       zip(index, curated)], curated)

    def ess(self, p_synthetic_M: np.ndarray) -> float:
        """The effective sample size of the resampling weights as a share of the M candidates (1: uniform)."""
        return effective_sample_size(importance_weights(p_synthetic_M, self.bias)) / len(p_synthetic_M)

    def restore(self, prompt_tokens, candidates_MT, kept_NT, fields) -> Curated:
        return Curated(**fields, ess=self.ess(fields["scores_M"]))


def n_candidates(n: int, upsample: float) -> int:
    """M = ceil(n / upsample): how many candidates to sample so that keeping n is the paper's upsampling."""
    if upsample <= 0:
        raise ValueError(f"upsample={upsample} must be > 0")
    return math.ceil(round(n / upsample, 9))  # round: 300 / 1.5 must not become 201 by float error


def importance_weights(p_synthetic_M, bias: float) -> np.ndarray:
    """w = (1 - p_synthetic)^bias `[M]` (float64): Drayson et al. 2025's weights; bias 0 is uniform."""
    p_M = np.asarray(p_synthetic_M, np.float64)
    if np.any(~((p_M >= 0) & (p_M <= 1))):
        raise ValueError("p_synthetic must lie in [0, 1]")
    if bias < 0:
        raise ValueError(f"bias={bias} must be >= 0")
    return (1.0 - p_M) ** bias


def effective_sample_size(weights_M) -> float:
    """Kish's effective sample size (Σw)² / Σw² of importance weights `[M]`: M for uniform weights, 1 when one
    weight holds all the mass."""
    w_M = np.asarray(weights_M, np.float64)
    return float(w_M.sum() ** 2 / np.sum(w_M**2))


def resample(rng: np.random.Generator, weights_M, n: int, max_repeats: int) -> np.ndarray:
    """n candidate indices `[n]` (int64, with repeats): each candidate repeated `max_repeats` times, then n
    entries drawn without replacement with probability ∝ weight (Drayson et al. 2025's
    `importance_sampling`, with our fixed budget n in place of round(M · upsample)). So no candidate is kept
    more than `max_repeats` times; the same generator state gives the same indices."""
    w_M = np.asarray(weights_M, np.float64)
    M = len(w_M)
    if max_repeats < 1 or n < 0:
        raise ValueError(f"need max_repeats >= 1 and n >= 0, got max_repeats={max_repeats}, n={n}")
    if np.any(~(w_M >= 0)) or np.any(~np.isfinite(w_M)):
        raise ValueError("weights must be finite and >= 0")
    if M * max_repeats < n:
        raise ValueError(f"{M} candidates × max_repeats={max_repeats} cannot fill n={n}: sample more candidates "
                         f"(upsample <= max_repeats, i.e. M >= n / max_repeats) or raise max_repeats")
    positive = int(np.count_nonzero(w_M))
    if positive * max_repeats < n:
        raise ValueError(f"only {positive} of {M} candidates have a nonzero weight (p_synthetic = 1), "
                         f"{positive} × max_repeats={max_repeats} < n={n}: lower bias, raise max_repeats or "
                         f"sample more candidates (lower upsample)")
    expanded_X = np.repeat(np.arange(M), max_repeats)
    w_X = w_M[expanded_X]
    return rng.choice(expanded_X, size=n, replace=False, p=w_X / w_X.sum())
