"""Several labs in one study (docs/ecosystems.md), in rounds:

    for round g = 0, 1, ...:
        for each lab k:  training sets = pools(its human share, what it reads of the labs' samples < g, or a crawl
                                              of the web as of round g - 1)
                         model = fit(...)           (its teacher: its own g - 1 or 0, or lab:a's generation g - 1)
                         samples = synthesize(model), rows = score(...)
        the round: between-lab metrics (homogenisation), the ecosystem's, the web's composition; then the labs
                   post to the web

Every lab's generation g trains before any lab's g + 1, and reads only generations < g. Each lab is a run
directory of its own below `labs/<name>/` (its config, its share of the human data, its generations and phases),
so it resumes, reports and traces (`collapse-lineage`) as a single-lab study does; the study's own directory
holds the rounds (`gen_NNN/metrics.jsonl`: every lab's rows with their `lab`, and the between-lab rows; `web.json`;
`score.done`), the run's metrics.jsonl and report. Lab k draws its keys from `rng.lab_key(seed, k)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from collapse import ecosystem_report, report
from collapse.config import Config, lab_configs, study_id, to_dict
from collapse.data.human import Seat
from collapse.labs import w_row
from collapse.files import metric_row, save_json
from collapse.metrics.ecosystem import ALL, labs_mean
from collapse.run import pools
from collapse.run.between import between_labs
from collapse.run.fit import fit
from collapse.run.measure import Reports, keep_finished, record, score
from collapse.run.phase import Outputs, phase
from collapse.run.study import Study, check_same_study, open_study, save_human
from collapse.run.synthesize import synthesize
from collapse.run.web import Web
from collapse.store import RunDir
from collapse.tracking import Tracker, make_tracker

log = logging.getLogger("collapse")


class Ecosystem:
    """The labs of a study: each one's `Study` and `Lineage`, who reads whom, and the web."""

    def __init__(self, cfg: Config, store: RunDir):
        self.cfg, self.store = cfg, store
        self.names = [lab.name for lab in cfg.labs]
        self.index = {name: k for k, name in enumerate(self.names)}
        self.studies: list[Study] = []
        self.lineages = [pools.Lineage() for _ in cfg.labs]
        self.web = Web(self)

    def open(self) -> None:
        """Each lab's study: its own config, run directory and share of the human data; checked, nothing written."""
        K, f = len(self.names), self.cfg.human.shared_fraction
        for k, (lab, lab_cfg) in enumerate(zip(self.cfg.labs, lab_configs(self.cfg))):
            lab_store = self.lab_dir(lab.name)
            check_same_study(lab_store, lab_cfg)
            lab_cfg = keep_finished(lab_cfg, lab_store)
            self.studies.append(dataclasses.replace(open_study(lab_cfg, lab_store, Seat(k, K, f), lab.name),
                                                    crawls=lab.crawl > 0))
        for study in self.studies:
            study.peers.update(zip(self.names, zip(self.studies, self.lineages)))
        self.web.check()

    def lab_dir(self, name: str) -> RunDir:
        return RunDir(self.store.path / "labs" / name)

    def reads(self, name: str) -> dict[str, float]:
        """Lab `name`'s row of W: {source lab: share of its synthetic rows}; its own samples alone by default."""
        return w_row(self.cfg.labs[self.index[name]], self.names)

    def crawls(self, name: str) -> bool:
        return self.cfg.labs[self.index[name]].crawl > 0

    def lineage(self, k: int) -> pools.Lineage:
        return self.lineages[k]

    def depth(self, ts, r: int) -> np.ndarray:
        """Each example's synthetic depth `[N]`: 0 human, 1 + the mean depth of its lab's generation-j training set."""
        depth_N = np.zeros(len(ts.tokens))
        for k in np.unique(ts.lab[ts.lab >= 0]):
            table = np.array([float(d[r]) for d in self.lineages[k].depths])
            rows = ts.lab == k
            depth_N[rows] = 1.0 + table[ts.provenance[rows]]
        return depth_N


def run(cfg: Config, store: RunDir, on_open: Callable[[RunDir], None] | None = None) -> RunDir:
    """Run (or resume) the ecosystem `cfg` in `store`."""
    eco = Ecosystem(cfg, store)
    eco.open()
    G = max(study.generations for study in eco.studies)
    with store.lock(), contextlib.closing(make_tracker(cfg.tracking, store.path, cfg.wandb_project, cfg.wandb_mode,
                                                       study_id(cfg), to_dict(cfg))) as tracker:
        if on_open is not None:
            on_open(store)
        save_json(store.path / "config.json", to_dict(cfg))
        for study in eco.studies:
            save_human(study)
        log.info("run directory %s | %d labs (%s) x %d generations x %d replicates", store.path, len(eco.names),
                 ", ".join(eco.names), G, cfg.replicates)
        reports, lab_reports = Reports(store, ecosystem_report.write), [Reports(s.store) for s in eco.studies]
        with contextlib.ExitStack() as stopping:
            for each in (reports, *lab_reports):
                stopping.enter_context(each.on_stop())
            for g in range(G):
                t0 = time.perf_counter()
                drawn = {}
                for study, lineage, lab_report in zip(eco.studies, eco.lineages, lab_reports):
                    sets = pools.lab_training_sets(study, g, lineage, eco)
                    model = fit(study, g, sets, lineage, _LabTracker(tracker, study.name))
                    samples = synthesize(study, g, model, lineage)
                    rows = score(study, g, model, lineage, samples)
                    lineage.add(model, samples.kept)
                    record(study, g, rows, _LabTracker(tracker, study.name), time.perf_counter() - t0, lab_report)
                    drawn[study.name] = samples.drawn
                eco.web.after_round(g)
                rows = _round(eco, g, drawn)
                report.print_generation(g, [row for row in rows if row.get("lab") == ALL], time.perf_counter() - t0,
                                        f"round of {len(eco.names)} labs", ecosystem_report.BETWEEN)
                store.rebuild_metrics(upto=g)
                reports.after(g == G - 1)
    return store


def _round(eco: Ecosystem, g: int, drawn: dict[str, list[np.ndarray]]) -> list[dict]:
    """Round g's rows, a phase of the study's own directory (`gen_NNN/metrics.jsonl`, `web.json`, `score.done`):
    every lab's rows with their `lab`, the pairs' (lab "a|b") and the ecosystem's (lab "*")."""
    cfg, store = eco.cfg, eco.store

    def compute(out: Outputs):
        rows = [{**row, "lab": s.name} for s in eco.studies for row in s.store.read_metrics(g, required=True)]
        between = between_labs(eco, g, drawn)
        for r, means in labs_mean(rows).items():
            between[ALL, None][r] = {**means, **between[ALL, None][r]}
        for (a, b), values in between.items():
            lab = ALL if b is None else f"{a}|{b}"
            rows += [{**metric_row(g, r, name, v, cfg.seed), "lab": lab} for r, named in enumerate(values)
                     for name, v in named.items()]
        store.write_metrics(g, rows)
        out.written(store.metrics_file(g))
        if eco.web.active:
            out.json(store.gen(g) / "web.json", eco.web.record(g))
        return rows, {"labs": eco.names}

    return phase(_Round(store, eco.studies[0].device), g, "score", lambda: store.read_metrics(g, required=True),
                 compute)


class _Round:
    """What `phase` needs of the study's own directory: its store, the device, a note of what was loaded."""

    def __init__(self, store: RunDir, device: str):
        self.store, self.device, self.loaded = store, device, set()


class _LabTracker(Tracker):
    """A lab's view of the study's tracker: its metrics and losses under `<lab>/`."""

    def __init__(self, tracker: Tracker, lab: str):
        self.tracker, self.lab = tracker, lab

    def train_loss(self, generation, step, loss_R):
        self.tracker.train_loss(generation, step, loss_R)  # the step axis is per generation: the lab's own run

    def metrics(self, generation, rows):
        self.tracker.metrics(generation, [{**row, "metric": f"{self.lab}/{row['metric']}"} for row in rows])
