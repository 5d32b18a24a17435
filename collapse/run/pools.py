"""Who trains on what: the one place that decides each replicate's training set for generation g, from the
human data and the samples of earlier generations (`collapse.regimes`), and what the study has produced so far
(`Lineage`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collapse import provenance, regimes
from collapse.rng import Phase, key_for, numpy_rng
from collapse.run.phase import Model


@dataclass
class Lineage:
    """What the generations so far have left for the next: each generation's synthetic corpus per replicate
    (`samples[j][r]` `[N, T]`), the mean synthetic depth of each generation's training set (`depths[j]` `[R]`),
    and the models a later generation may need (generation 0's, the judge and a possible teacher or start, and
    the newest)."""

    samples: list[list[np.ndarray]] = field(default_factory=list)
    depths: list[np.ndarray] = field(default_factory=list)
    first: Model | None = None
    newest: Model | None = None

    def model(self, j: int) -> Model:
        """Generation j's model: generation 0's or the newest (g - 1's), the only ones a generation reads."""
        assert j in (0, len(self.samples) - 1), f"generation {j}'s model is not kept"
        return self.first if j == 0 else self.newest

    def add(self, model: Model, samples: list[np.ndarray]) -> None:
        self.first = self.first or model
        self.newest = model
        self.samples.append(samples)


def training_sets(study, g: int, lineage: Lineage) -> list[regimes.TrainingSet]:
    """Each replicate's training set for generation g, with every example's provenance, and the mean synthetic
    depth of each (appended to `lineage.depths`)."""
    sets = [regimes.training_set(study.cfg.regime, g, human.train, human.fresh, [s[r] for s in lineage.samples],
                                 numpy_rng(key_for(study.cfg.seed, g, r, Phase.REGIME)))
            for r, human in enumerate(study.humans)]
    lineage.depths.append(provenance.mean_depths([ts.provenance for ts in sets], lineage.depths))
    return sets
