"""`curate=correct`: correct every sample toward the truth (Gillman et al., ICML 2024; the grammar only):
`unit=token` replaces each generated token, with probability `fraction`, by a draw from the truth given the
corrected prefix; `unit=sequence` replaces each sample's generated tokens, with probability `fraction`, by the
truth's continuation of its prompt (their γ-ideal corrector: the mixture (1 - fraction) q + fraction p)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.checks import check, fraction, one_of
from collapse.curation import scores
from collapse.curation.base import CurateConfig, Curated, Drawing, Synthesis
from collapse.curation.select import corrections


@dataclass(frozen=True)
class CorrectCurateConfig(CurateConfig, option="correct"):
    """Correct every sample toward the truth."""

    fraction: float = 0.5
    unit: str = "token"  # token | sequence

    def validate(self, has_truth: bool) -> None:
        check(has_truth, "curate", "curate=correct corrects toward the exact truth, which only data=grammar has")
        fraction(self.fraction, "curate.fraction")
        one_of(self.unit, "curate.unit", ("token", "sequence"))

    def curate(self, d: Drawing) -> Synthesis:
        from collapse.data import grammar

        tokens_RNT, index = d.draw(d.n, 0)
        fix = grammar.correct if self.unit == "token" else grammar.correct_sequences
        kept, curated = [], []
        for r, human in enumerate(d.humans):
            fixed_NT = np.asarray(fix(human.truth, d.keys[r], tokens_RNT[r], d.P, self.fraction), np.int32)
            changed, generated = corrections(tokens_RNT[r], fixed_NT, d.P)
            kept.append(fixed_NT)
            curated.append(Curated(np.arange(d.n), scores.truth(human.truth, tokens_RNT[r], d.P),
                                   scores.truth(human.truth, fixed_NT, d.P), changed=changed, generated=generated))
        return Synthesis(list(tokens_RNT), kept, index, curated)

    def restore(self, prompt_tokens, candidates_MT, kept_NT, fields) -> Curated:
        changed, generated = corrections(candidates_MT[fields["kept_n"]], kept_NT, prompt_tokens)
        return Curated(**fields, changed=changed, generated=generated)
