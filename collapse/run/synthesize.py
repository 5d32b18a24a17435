"""Synthesize: generation g's synthetic corpus, drawn from its model (from BOS, or continuing human prefixes)
and curated by the `curate` option (`collapse.curation`), which draws and judges candidates only through the
`Drawing` made here. Curation belongs to the sample phase: its candidates are in memory, the kept corpus is a
deterministic function of them and the models, and one marker covers both (a kill before it is written draws
the candidates again, with the same keys). With `sample.withheld`, more rows drawn the same way and never
released: the control of the membership test (docs/membership.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapse.curation import Curated, Drawing, NoCurateConfig, Synthesis
from collapse.curation.base import loaded
from collapse.progress import Progress
from collapse.rng import Phase, for_round, numpy_rng
from collapse.run.phase import Model, Outputs, phase
from collapse.run.pools import Lineage
from collapse.files import load_array
from collapse.store import ARRAYS


@dataclass(frozen=True)
class Samples:
    """Generation g's synthetic data per replicate `[n, T]`: `kept` joins the pools (the curated corpus) and
    `drawn` is the model's own iid draw of the same size, which the metrics measure (the first n candidates
    of round 0; `kept` itself without curation); `curated`: each replicate's curation (empty without)."""

    kept: list[np.ndarray]
    drawn: list[np.ndarray]
    curated: list[Curated]


def prompt_index(study, g: int, r: int, m: int, round: int = 0) -> np.ndarray:
    """Continuation mode: the human train rows whose prefixes generation g's `m` candidates of replicate r
    continue, in round `round`."""
    rng = numpy_rng(for_round(study.key(g, r, Phase.SAMPLE), round))
    return rng.choice(study.n_train, m, replace=m > study.n_train)


def withheld_prompts(study, g: int, r: int) -> np.ndarray:
    """Continuation mode: the human train rows whose prefixes the withheld rows continue, a uniform draw without
    replacement from the rows the corpus's prompts (round 0) left, so that corpus and withheld prompts together
    are one uniform draw without replacement, split at random: their rows are exchangeable."""
    free = np.setdiff1d(np.arange(study.n_train), prompt_index(study, g, r, study.n))
    return numpy_rng(study.key(g, r, Phase.WITHHELD)).choice(free, study.cfg.sample.withheld, replace=False)


def draw(study, g: int, model: Model, m: int, round: int = 0, stream: Phase = Phase.SAMPLE
         ) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """`m` sequences per replicate from generation g's model `[R, m, T]` (round `round`'s keys of `stream`:
    round 0 of SAMPLE is the corpus of a run without curation, WITHHELD the rows never released): from BOS, or in
    continuation mode a human train prefix of P tokens followed by the model's continuation of T - P tokens;
    and the prompts' train rows (None: unconditional)."""
    cfg, R, P = study.cfg, study.replicates, study.P
    if P:
        index = [withheld_prompts(study, g, r) if stream == Phase.WITHHELD else prompt_index(study, g, r, m, round)
                 for r in range(R)]
        prompts = np.stack([human.train[i, :P] for human, i in zip(study.humans, index)])
    else:
        index, prompts = None, np.zeros((R, m, 0), np.int32)
    keys = for_round(study.keys(g, stream), round)
    what = "withheld" if stream == Phase.WITHHELD else "sample" + (f" round {round}" if round else "")
    with Progress(m, f"gen {g} {what}", "seq") as bar:
        new = model.family.sample(model.params, prompts, keys, cfg.sample.at(g), cfg.data.seq_len - P,
                                  on_batch=lambda b: bar.update(min(b, m - bar.done)))
    return np.concatenate([prompts.astype(np.int32), new], axis=2), index


def drawing(study, g: int, model: Model, lineage: Lineage) -> Drawing:
    """What generation g's curation may use: draws of its model, log-probabilities of the generated tokens
    under generation 0's (`gen0`) or its own (`current`) model, the human data and the curation keys."""
    def logprob(judge: str, tokens_RMT: np.ndarray) -> np.ndarray:
        m = model if judge == "current" else lineage.model(0) if g else model
        return m.family.logprob(m.params, tokens_RMT, skip=study.P)

    return Drawing(g, study.n, study.P, study.humans,
                   [study.key(g, r, Phase.CURATE) for r in range(study.replicates)],
                   lambda m, round: draw(study, g, model, m, round), logprob)


def synthesize(study, g: int, model: Model, lineage: Lineage) -> Samples:
    """Generation g's synthetic corpus per replicate `[n, T]`, and with curation the candidates behind it and
    what the curation did (`Samples`)."""
    cfg, store, R, n = study.cfg, study.store, study.replicates, study.n
    curate = not isinstance(cfg.curate, NoCurateConfig)

    def compute(out: Outputs):
        synthesis: Synthesis = cfg.curate.curate(drawing(study, g, model, lineage))
        for r in range(R):
            arrays = {"samples": synthesis.kept[r], "provenance": np.full(n, g, np.int32)}
            if synthesis.index is not None:
                arrays["prompt_index"] = synthesis.index[r]
            for name, array in {**arrays, **synthesis.arrays(r)}.items():
                out.array(store.array(g, r, name), array)
        if cfg.sample.withheld:  # drawn as the corpus is, and never released: the membership test's control
            withheld_RWT, _ = draw(study, g, model, cfg.sample.withheld, stream=Phase.WITHHELD)
            for r in range(R):
                out.array(store.array(g, r, "withheld"), withheld_RWT[r])
        info = {"candidates": [len(cur.scores_M) for cur in synthesis.curated]} if curate else {}  # all rounds
        return Samples(synthesis.kept, [c[:n] for c in synthesis.candidates], synthesis.curated), info

    def load():
        kept = [load_array(store.array(g, r, "samples")) for r in range(R)]
        if not curate:
            return Samples(kept, kept, [])
        drawn, curated = [], []
        for r in range(R):
            candidates = load_array(store.array(g, r, "candidates"))
            arrays = {name: load_array(path) for name in ARRAYS["sample"]
                      if name.startswith("curate_") and (path := store.array(g, r, name)).exists()}
            drawn.append(candidates[:n])
            curated.append(cfg.curate.restore(study.P, candidates, kept[r], loaded(arrays)))
        return Samples(kept, drawn, curated)

    return phase(study, g, "sample", load, compute)
