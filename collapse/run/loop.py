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
A study of several labs runs them in rounds (`collapse.run.ecosystem`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path


from collapse.config import Config, study_id, to_dict
from collapse.families import AnalyticConfig
from collapse.pretrained import resolve
from collapse.run import analytic, ecosystem, pools
from collapse.run.fit import fit
from collapse.run.measure import Reports, keep_finished, record, score
from collapse.run.study import check_same_study, open_study, save_human
from collapse.run.synthesize import synthesize
from collapse.store import RunDir
from collapse.tracking import make_tracker
from collapse.validate import validate

log = logging.getLogger("collapse")
logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save step at INFO


def run(cfg: Config, run_dir: str | Path, on_open: Callable[[RunDir], None] | None = None) -> RunDir:
    """Run (or resume) the study `cfg` in `run_dir`. Every input is checked before anything is written;
    `on_open(store)` is called once the directory is known to hold this study and its lock is held.

    Process-wide JAX settings (CPU device split, multi-process start, compilation cache) are the caller's:
    the `collapse` command sets them up (`collapse.cli.set_up_jax`)."""
    cfg = resolve(cfg)  # a pretrained model's sizes and digest from its folder (the command's config has them)
    validate(cfg)
    store = RunDir(run_dir)
    check_same_study(store, cfg)
    if isinstance(cfg.model, AnalyticConfig):  # closed-form families: the whole study is one compiled program
        return analytic.run(cfg, store, on_open)
    if cfg.labs:  # several labs, in rounds
        return ecosystem.run(cfg, store, on_open)
    study = open_study(keep_finished(cfg, store), store)
    with store.lock(), contextlib.closing(make_tracker(cfg.tracking, store.path, cfg.wandb_project, cfg.wandb_mode,
                                                       study_id(cfg), to_dict(cfg))) as tracker:
        if on_open is not None:
            on_open(store)
        save_human(study)
        log.info("run directory %s | %d generations x %d replicates | regime=%s | %s, sharded by %s",
                 store.path, study.generations, cfg.replicates, cfg.regime.name, study.device,
                 "replicate" if study.layout.by_replicate or study.layout.n == 1 else "batch")
        lineage, reports = pools.Lineage(), Reports(store)
        with reports.on_stop():
            for g in range(study.generations):
                t0 = time.perf_counter()
                sets = pools.training_sets(study, g, lineage)
                model = fit(study, g, sets, lineage, tracker)
                samples = synthesize(study, g, model, lineage)
                rows = score(study, g, model, lineage, samples)
                lineage.add(model, samples.kept)
                record(study, g, rows, tracker, time.perf_counter() - t0, reports)
    return store
