"""What every curation option is: a registered config option that turns a generation's model into its synthetic
corpus, given the means to draw and judge candidates (`Drawing`), and the summary of what it kept (`Curated`).

The synthetic budget stays n (`sample.num_sequences`): an option draws M candidates and keeps n of them (a
selection, a resampling) or rewrites n draws (a correction). It draws and scores only through `Drawing`, so a
new option is one module (its schema, validation and `curate`) and never edits the loop.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from collapse.options import Registered
from collapse.metrics.families import Family, declare

declare(Family("curation", "Curation", 5, ("curate_*",)))


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


# The arrays of a `Curated` in the sample phase's outputs (gen_NNN/rep_NN/<name>.npy), by field.
ARRAYS = {"scores_M": "curate_scores", "kept_n": "curate_kept", "kept_scores_n": "curate_scores_kept",
          "accuracy": "curate_detector_accuracy", "used": "curate_detector_used"}


@dataclass(frozen=True)
class Synthesis:
    """A generation's synthetic data per replicate: the candidates drawn `[M, T]`, the corpus that joins the
    pools `[n, T]`, the human train rows whose prefixes the kept rows continue (continuation mode; None:
    unconditional) and each replicate's `Curated` (empty without curation)."""

    candidates: list[np.ndarray]
    kept: list[np.ndarray]
    index: list[np.ndarray] | None
    curated: list[Curated] = field(default_factory=list)

    def arrays(self, r: int) -> dict[str, np.ndarray]:
        """Replicate r's curation arrays by file name (nothing without curation)."""
        if not self.curated:
            return {}
        cur = self.curated[r]
        out = {"candidates": self.candidates[r]}
        for f in fields(Curated):
            value = getattr(cur, f.name)
            if f.name in ARRAYS and value is not None:
                out[ARRAYS[f.name]] = np.float64(value) if np.ndim(value) == 0 else value
        return out


def loaded(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The `Curated` fields stored in a replicate's curation arrays (`Synthesis.arrays`), by field name."""
    out = {}
    for name, file in ARRAYS.items():
        if file in arrays:
            out[name] = float(arrays[file]) if arrays[file].ndim == 0 else arrays[file]
    return out


@dataclass
class Drawing:
    """What a curation option may use at generation g: `draw(m, round) -> (tokens [R, m, T], prompt rows per
    replicate or None)` (round 0 is the stream of a run without curation), `logprob(judge, tokens [R, M, T])
    -> [R, M]` the log-probability of the generated tokens given the prompt under `gen0` or the `current`
    model, each replicate's human data (`humans[r].truth`: the grammar's exact language, None on text) and
    key `keys[r]` (seed, g, r, Phase.CURATE), the budget `n` and the prompt tokens `P`; `where` begins its
    error messages."""

    g: int
    n: int
    P: int
    humans: list
    keys: list
    draw: Callable[[int, int], tuple[np.ndarray, list[np.ndarray] | None]]
    logprob: Callable[[str, np.ndarray], np.ndarray]

    @property
    def where(self) -> str:
        return f"generation {self.g}: "


@dataclass(frozen=True)
class CurateConfig(Registered, abc.ABC, group="curate"):
    """What happens to each generation's samples before they join the pools (docs/curation.md)."""

    def validate(self, has_truth: bool) -> None:
        """Raise `ConfigError` naming the first bad key (`has_truth`: the data is the grammar, with an exact
        language to score by)."""

    def candidates(self, n: int) -> int:
        """M: candidates drawn (per round) for n kept samples."""
        return n

    @abc.abstractmethod
    def curate(self, d: Drawing) -> Synthesis:
        """Generation g's synthetic data, drawn and curated through `d`."""

    def restore(self, prompt_tokens: int, candidates_MT: np.ndarray, kept_NT: np.ndarray, fields: dict[str, Any]) -> Curated:
        """A replicate's `Curated` from its stored arrays (`fields`, as `loaded` reads them) on resume: the
        fields an option derives from them (a pass count, corrections, an effective sample size) added."""
        return Curated(**fields)
