"""The web of an ecosystem (docs/ecosystems.md): per replicate, the rows anyone may crawl, each with its origin.

Before round 0 it holds the human train rows every lab shares (`human.shared_fraction`); after round t it also
holds `web.human_rows` new human rows of that round (the grammar draws them from the truth, key
fold_in(fold_in(fold_in(human_key(seed), r), WEB), t); on text they are the next rows of the fresh reserve, the
`data.fresh_fraction` split, which then feeds the web and no lab's `regime.fresh`) and what each lab posted:
the first round(post_fraction · n) of its generation-t samples (a corpus's rows are exchangeable). A lab that
crawls trains generation g on `crawl` rows drawn uniformly from the web as of round g - 1 (key: the lab's, g,
replicate, REGIME), so its human share falls as the labs post. A function of the labs' samples, rebuilt round by
round on resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from collapse.errors import ConfigError
from collapse.options import option_name
from collapse.regimes import TrainingSet
from collapse.rng import Phase, human_key, numpy_rng

WEB = 4  # the web's stream of a replicate's human key (0..3: train, valid, test, fresh)


@dataclass(frozen=True)
class Part:
    """Rows that joined the web in one round (-1: before round 0)."""

    tokens: np.ndarray  # [n, T]
    lab: np.ndarray  # [n] the lab that posted it, -1 human
    generation: np.ndarray  # [n] the generation that sampled it, -1 human
    index: np.ndarray  # [n] its row in that generation's samples, or (human) in the train split, then new rows


class Web:
    def __init__(self, eco):
        self.eco = eco
        self.parts: list[list[Part]] = []  # [replicate] -> parts in the order they joined
        self.rounds: list[list[int]] = []  # [replicate] -> the round of each part

    @property
    def active(self) -> bool:
        """Whether any lab posts or crawls (else the web is not part of the study)."""
        return any(lab.crawl or lab.post_fraction for lab in self.eco.cfg.labs)

    def check(self) -> None:
        """Refuse, before any compute, a crawling lab whose regime would be ignored (it trains on the crawl
        alone), and a web whose human rows this data cannot supply: on text, more than the fresh reserve holds
        over the rounds, or a reserve that a lab's `regime.fresh` also takes."""
        cfg, need = self.eco.cfg, self.eco.cfg.web.human_rows * self.eco.cfg.generations
        for k, (lab, study) in enumerate(zip(cfg.labs, self.eco.studies)):
            regime = option_name(study.cfg.regime)
            if lab.crawl and (regime != "replace" or study.cfg.regime.heal_generations):
                raise ConfigError(f"labs[{k}].crawl", f"lab {lab.name} trains on its crawl of the web alone, so its "
                                  f"regime={regime}{' with healing' if regime == 'replace' else ''} would be "
                                  "ignored: plain regime=replace for it, or crawl=0")
        if not need or cfg.data.has_truth:
            return
        for name, study in zip(self.eco.names, self.eco.studies):
            if study.cfg.regime.fresh_per_generation(study.n_train):
                raise ConfigError("web.human_rows", f"on text the fresh reserve feeds the web, and lab {name}'s "
                                  "regime.fresh takes it too: set one of them")
        if need > len(self._reserve(0)):
            raise ConfigError("web.human_rows", f"{cfg.web.human_rows} rows a round x {cfg.generations} rounds = "
                              f"{need} new human rows, but the fresh reserve holds {len(self._reserve(0))}: "
                              "raise data.fresh_fraction or lower web.human_rows")

    def _reserve(self, r: int) -> np.ndarray:
        """Replicate r's fresh reserve of text, whole: the labs' parts of it in lab order."""
        return np.concatenate([study.humans[r].fresh for study in self.eco.studies])

    def _new_human(self, r: int, t: int) -> np.ndarray:
        """Round t's `web.human_rows` new human rows of replicate r."""
        cfg, human, n = self.eco.cfg, self.eco.studies[0].humans[r], self.eco.cfg.web.human_rows
        if human.truth is None:
            return self._reserve(r)[t * n:(t + 1) * n]
        from collapse.data import grammar

        key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(human_key(cfg.seed), r), WEB), t)
        return np.asarray(grammar.sample(human.truth, key, n, cfg.data.seq_len))

    def _start(self) -> None:
        for human in self.eco.studies[0].humans:  # a lab's first `shared` train rows are every lab's
            rows = np.arange(human.shared)
            self.parts.append([Part(human.train[rows], np.full(len(rows), -1, np.int32), np.full(len(rows), -1, np.int32),
                                    rows.astype(np.int64))])
            self.rounds.append([-1])

    def after_round(self, t: int) -> None:
        """Round t's new human rows and every lab's posts join the web."""
        if not self.parts:
            self._start()
        cfg = self.eco.cfg
        for r, parts in enumerate(self.parts):
            if cfg.web.human_rows:
                tokens = self._new_human(r, t)
                # new human rows are numbered after the train split
                offset = len(self.eco.studies[0].humans[r].train) + t * cfg.web.human_rows
                parts.append(Part(tokens, np.full(len(tokens), -1, np.int32), np.full(len(tokens), -1, np.int32),
                                  offset + np.arange(len(tokens), dtype=np.int64)))
                self.rounds[r].append(t)
            for k, (lab, lineage) in enumerate(zip(cfg.labs, self.eco.lineages)):
                kept = lineage.samples[t][r]
                n = int(round(lab.post_fraction * len(kept)))
                if n:
                    parts.append(Part(kept[:n], np.full(n, k, np.int32), np.full(n, t, np.int32),
                                      np.arange(n, dtype=np.int64)))
                    self.rounds[r].append(t)

    def rows(self, r: int, t: int) -> Part:
        """Replicate r's web as of round t (every part that joined before or in it)."""
        parts = [p for p, when in zip(self.parts[r], self.rounds[r]) if when <= t]
        return Part(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("tokens", "lab", "generation", "index")))

    def crawl(self, study, g: int, r: int) -> TrainingSet:
        """`crawl` rows of the web as of round g - 1, drawn uniformly (with replacement only if the web is
        smaller), in web order."""
        web = self.rows(r, g - 1)
        size = self.eco.cfg.labs[self.eco.index[study.name]].crawl
        rng = numpy_rng(study.key(g, r, Phase.REGIME))
        pick = np.sort(rng.choice(len(web.tokens), size, replace=size > len(web.tokens)))
        return TrainingSet(web.tokens[pick], web.generation[pick], web.index[pick], web.lab[pick])

    def record(self, t: int) -> dict:
        """The web after round t per replicate: rows by origin, the synthetic share, the mean synthetic depth."""
        from collapse.provenance import origin_namer, origins

        name = origin_namer(self.eco.names)
        out = []
        for r in range(len(self.parts)):
            web = self.rows(r, t)
            codes = origins(web.generation, web.lab)
            values, counts = np.unique(codes, return_counts=True)
            depth = self.eco.depth(TrainingSet(web.tokens, web.generation, web.index, web.lab), r)
            out.append({"replicate": r, "rows": int(len(codes)), "by_origin": {name(int(v)): int(c) for v, c in
                                                                             zip(values, counts)},
                        "synthetic_share": float(np.mean(web.lab >= 0)) if len(codes) else 0.0,
                        "mean_depth": float(depth.mean()) if len(codes) else 0.0})
        return {"round": t, "replicates": out}
