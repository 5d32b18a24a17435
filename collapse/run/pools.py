"""Who trains on what: the one place that decides each replicate's training set for generation g, from the
human data and the samples of earlier generations (`collapse.regimes`), and what the study has produced so far
(`Lineage`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collapse import provenance, regimes
from collapse.rng import Phase, numpy_rng
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
    previous: Model | None = None  # the one before the newest: what another lab of the round may read

    def model(self, j: int) -> Model:
        """Generation j's model: generation 0's, the newest or the one before: the only ones a generation reads
        (its own generation 0 or g - 1; another lab's g - 1 in a round where that lab has finished g)."""
        kept = {0: self.first, len(self.samples) - 1: self.newest, len(self.samples) - 2: self.previous}
        assert j in kept and kept[j] is not None, f"generation {j}'s model is not kept"
        return kept[j]

    def add(self, model: Model, samples: list[np.ndarray]) -> None:
        self.first = self.first or model
        self.previous, self.newest = self.newest, model
        self.samples.append(samples)


def training_sets(study, g: int, lineage: Lineage) -> list[regimes.TrainingSet] | None:
    """Each replicate's training set for generation g, with every example's provenance, and the mean synthetic
    depth of each (appended to `lineage.depths`); None where the model samples its own rows as it trains
    (regime=online from generation 1: `collapse.run.online`; every row one generation deeper than g - 1's)."""
    if g and study.cfg.regime.SAMPLES_WHILE_TRAINING:
        lineage.depths.append(lineage.depths[g - 1] + 1)
        return None
    sets = [regimes.training_set(study.cfg.regime, g, human.train, human.fresh, [s[r] for s in lineage.samples],
                                 numpy_rng(study.key(g, r, Phase.REGIME)))
            for r, human in enumerate(study.humans)]
    lineage.depths.append(provenance.mean_depths([ts.provenance for ts in sets], lineage.depths))
    return sets


# ------------------------------------------------------------------------------- several labs (ecosystems)


def allocate(shares: dict[int, float], n: int) -> dict[int, int]:
    """Rows per source of n rows split by `shares` (summing to 1): the largest remainders round up, so the
    counts sum to n exactly (W's row times the lab's synthetic budget)."""
    exact = {k: w * n for k, w in shares.items() if w > 0}
    out = {k: int(np.floor(x)) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[: n - sum(out.values())]:
        out[k] += 1
    return out


def received(study, eco, j: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generation j's synthetic rows as this lab receives them (its `reads`, a row of W): from each source lab
    l its share of the lab's budget n, all of l's rows in order where the share is all of them, else a sorted
    uniform subset (key: this lab's, generation j, replicate r, REGIME, round 1 + l: the same for every later
    generation, and no draw at all for a lab that reads only itself). Returns (tokens [n, T], the source lab
    [n], the row in its samples [n])."""
    from collapse.rng import for_round

    shares = {eco.index[name]: w for name, w in eco.reads(study.name).items()}
    parts = []
    for l, count in sorted(allocate(shares, study.n).items()):
        source = eco.lineage(l).samples[j][r]
        if count == len(source):
            rows = np.arange(count)
        else:
            rng = numpy_rng(for_round(study.key(j, r, Phase.REGIME), 1 + l))
            rows = np.sort(rng.choice(len(source), count, replace=count > len(source)))
        parts.append((source[rows], np.full(count, l, np.int32), rows.astype(np.int64)))
    return tuple(np.concatenate(p) for p in zip(*parts))


def lab_training_sets(study, g: int, lineage: Lineage, eco) -> list[regimes.TrainingSet]:
    """A lab's training sets for generation g in an ecosystem: its human data and, from generation 1 on, the
    samples it reads (`received`) through its own regime, or a crawl of the web as of round g - 1; each row's
    origin (lab, generation) and its synthetic depth follow it across labs (appended to `lineage.depths`)."""
    sets = []
    for r, human in enumerate(study.humans):
        if g and eco.crawls(study.name):
            sets.append(eco.web.crawl(study, g, r))
            continue
        got = [received(study, eco, j, r) for j in range(g)]
        ts = regimes.training_set(study.cfg.regime, g, human.train, human.fresh, [t for t, _, _ in got],
                                  numpy_rng(study.key(g, r, Phase.REGIME)))
        synthetic = ts.provenance >= 0
        lab, index = np.full(len(ts.tokens), -1, np.int32), ts.index.copy()
        for j in np.unique(ts.provenance[synthetic]):
            rows = ts.provenance == j
            lab[rows], index[rows] = got[j][1][ts.index[rows]], got[j][2][ts.index[rows]]
        sets.append(regimes.TrainingSet(ts.tokens, ts.provenance, index, lab))
    lineage.depths.append(np.array([eco.depth(ts, r).mean() for r, ts in enumerate(sets)]))
    return sets
