"""The generational loop: the only code that knows about generations, phases and resume.

    for generation g = 0, 1, ...:
        training sets = pools(human data, samples of generations < g)        (generation 0: the human train split)
        model_g       = fit(training sets)              -> checkpoint, provenance.json (origins, depth, labels)
        samples_g     = synthesize(model_g)             -> M draws, curated to the synthetic corpus of n
        metrics_g     = score(model_g, model_0, the model's own n draws, human data) -> metrics.jsonl, report

Each of fit, synthesize and score is a phase with a marker (`collapse.run.phase`): a phase marked done whose
outputs are intact is loaded instead of recomputed, so rerunning a study on its directory continues where it
stopped. Every key derives from (seed, generation, replicate, phase), so the numbers are those of an
uninterrupted run. A model is read from its checkpoint (its digest verified) only when a later phase needs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from collapse import report
from collapse.config import Config, study_id, to_dict
from collapse.families import AnalyticConfig
from collapse.metrics import score, tails
from collapse.rng import Phase, key_for, numpy_rng
from collapse.run import analytic, pools
from collapse.run.fit import fit
from collapse.run.phase import Model, Outputs, phase
from collapse.run.study import Study, check_same_study, open_study, save_human
from collapse.run.synthesize import Samples, synthesize
from collapse.files import is_writer, load_array, metric_row, save_array
from collapse.store import PHASES, RunDir
from collapse.tracking import make_tracker
from collapse.validate import validate

log = logging.getLogger("collapse")
logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save step at INFO


def run(cfg: Config, run_dir: str | Path, on_open: Callable[[RunDir], None] | None = None) -> RunDir:
    """Run (or resume) the study `cfg` in `run_dir`. Every input is checked before anything is written;
    `on_open(store)` is called once the directory is known to hold this study and its lock is held.

    Process-wide JAX settings (CPU device split, multi-process start, compilation cache) are the caller's:
    the `collapse` command sets them up (`collapse.cli.set_up_jax`)."""
    validate(cfg)
    store = RunDir(run_dir)
    check_same_study(store, cfg)
    if isinstance(cfg.model, AnalyticConfig):  # closed-form families: the whole study is one compiled program
        return analytic.run(cfg, store, on_open)
    study = open_study(_keep_finished(cfg, store), store)
    with store.lock(), contextlib.closing(make_tracker(cfg.tracking, store.path, cfg.wandb_project, cfg.wandb_mode,
                                                       study_id(cfg), to_dict(cfg))) as tracker:
        if on_open is not None:
            on_open(store)
        save_human(study)
        log.info("run directory %s | %d generations x %d replicates | regime=%s | %s, sharded by %s",
                 store.path, study.generations, cfg.replicates, cfg.regime.name, study.device,
                 "replicate" if study.layout.by_replicate or study.layout.n == 1 else "batch")
        lineage = pools.Lineage()
        for g in range(study.generations):
            t0 = time.perf_counter()
            sets = pools.training_sets(study, g, lineage)
            model = fit(study, g, sets, lineage, tracker)
            samples = synthesize(study, g, model, lineage)
            rows = _score(study, g, model, lineage, samples)
            lineage.add(model, samples.kept)
            _record(study, g, rows, tracker, time.perf_counter() - t0)
    return store


def _keep_finished(cfg: Config, store: RunDir) -> Config:
    """`cfg` with at least as many generations as `store` has finished in a row from generation 0: a study never
    shrinks (fewer `generations=` than are done loads them all, and config.json keeps counting them)."""
    done = 0
    while store.is_done(done, "score"):
        done += 1
    if done > cfg.generations:
        log.info("%s holds %d finished generations; generations=%d runs none of them again", store.path, done,
                 cfg.generations)
        return dataclasses.replace(cfg, generations=done)
    return cfg


def _score(study: Study, g: int, model: Model, lineage: pools.Lineage, samples: Samples) -> list[dict]:
    """Generation g's metric rows (docs/metrics.md), and the per-sequence and per-type arrays behind them: the
    model's own draw (`samples.drawn`), what the curation did (`curate_*` rows) and, from generation 1 on, the
    gap to its teacher (`teacher_gap_*`)."""
    cfg, store = study.cfg, study.store

    def compute(out: Outputs):
        # Subsets are drawn afresh for every generation and replicate: the rows of a corpus are exchangeable,
        # so fixed sizes (not fixed positions) make generations comparable; the replicate spread includes them.
        rngs = [numpy_rng(key_for(cfg.seed, g, r, Phase.SCORE)) for r in range(study.replicates)]
        judge = lineage.model(0) if g else model  # generation 0 judges every generation's samples
        previous = (lambda r, name: load_array(store.array(g - 1, r, name))) if g else None  # noqa: E731
        values, arrays = score.generation_metrics(cfg.metrics, model.family, model.params, judge.params, study.humans,
                                                  study.refs, samples.drawn, rngs, family0=judge.family,
                                                  previous=previous)
        for r, curated in enumerate(samples.curated):
            values[r].update(curated.metrics())
        if g:  # the student - teacher gap, against the teacher generation's own rows (finished before g)
            teacher_rows = store.read_metrics(study.teacher(g), required=True)
            for r, gap in enumerate(score.teacher_gaps(values, teacher_rows)):
                values[r].update(gap)
        for r, named in enumerate(arrays):
            for name, array in named.items():
                out.array(store.array(g, r, name), array)
        rows = [metric_row(g, r, name, v, cfg.seed) for r, metrics in enumerate(values) for name, v in metrics.items()]
        store.write_metrics(g, rows)
        out.written(store.metrics_file(g))
        return rows, {}

    return phase(study, g, "score", lambda: store.read_metrics(g, required=True), compute)


def _record(study: Study, g: int, rows: list[dict], tracker, seconds: float) -> None:
    """Generation g's rows to the tracker and the log; the run's metrics.jsonl, last-seen table and report."""
    tracker.metrics(g, rows)
    loaded = [p for p in PHASES if (g, p) in study.loaded]
    report.print_generation(g, rows, seconds, f"{', '.join(loaded)} loaded from {study.store.path.name}"
                            if loaded else "")
    store = study.store
    if not is_writer():  # the run-level files are process 0's, whose markers the others may not see yet
        return
    store.rebuild_metrics(upto=g)  # later generations join once the loop has checked them
    counts_GRV = np.stack([[load_array(store.array(j, r, "token_counts")) for r in range(study.replicates)]
                           for j in range(g + 1)])
    save_array(store.last_seen, tails.last_seen(counts_GRV))
    report.write(store)
