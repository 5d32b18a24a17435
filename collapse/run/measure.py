"""A generation's measurements and record (docs/metrics.md): the score phase (`score`: the metric rows of the
model's own draw, what curation did, the gap to its teacher) and `record` (the tracker, the log line, the run's
metrics.jsonl, last-seen table and, when due, the report); and `keep_finished` (a study never shrinks)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from collapse import report, watermark
from collapse.config import Config
from collapse.files import is_writer, load_array, metric_row, save_array
from collapse.metrics import score as metrics
from collapse.metrics import tails
from collapse.rng import Phase, numpy_rng
from collapse.run.phase import Model, Outputs, phase
from collapse.run.pools import Lineage
from collapse.run.study import Study
from collapse.run.synthesize import Samples
from collapse.store import PHASES, RunDir

log = logging.getLogger("collapse")


def keep_finished(cfg: Config, store: RunDir) -> Config:
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


def score(study: Study, g: int, model: Model, lineage: Lineage, samples: Samples) -> list[dict]:
    """Generation g's metric rows (docs/metrics.md), and the per-sequence and per-type arrays behind them: the
    model's own draw (`samples.drawn`), what the curation did (`curate_*` rows), from generation 1 on the gap
    to its teacher (`teacher_gap_*`) and, while healing, the share of the collapse undone (`recovery_*`)."""
    cfg, store = study.cfg, study.store

    def compute(out: Outputs):
        # Subsets are drawn afresh for every generation and replicate: the rows of a corpus are exchangeable,
        # so fixed sizes (not fixed positions) make generations comparable; the replicate spread includes them.
        rngs = [numpy_rng(study.key(g, r, Phase.SCORE)) for r in range(study.replicates)]
        judge = lineage.model(0) if g else model  # generation 0 judges every generation's samples
        previous = (lambda r, name: load_array(store.array(g - 1, r, name))) if g else None  # noqa: E731
        values, arrays = metrics.generation_metrics(cfg.metrics, model.family, model.params, judge.params, study.humans,
                                                    study.refs, samples.drawn, rngs, family0=judge.family,
                                                    previous=previous)
        for r, curated in enumerate(samples.curated):
            values[r].update(curated.metrics())
        if cfg.sample.watermark != "none":
            for r, rows in enumerate(watermark_rows(study, g, model, samples)):
                values[r].update(rows)
        if cfg.sample.withheld:
            for r, rows in enumerate(membership_rows(study, g, model)):
                values[r].update(rows)
        if g:  # the student - teacher gap, against the teacher generation's own rows (finished before g)
            peer = study.teacher_peer()  # another lab's model (train.teacher=lab:<name>), else this lab's own
            teacher_rows = (peer[0].store if peer else store).read_metrics(study.teacher(g), required=True)
            for r, gap in enumerate(metrics.teacher_gaps(values, teacher_rows)):
                values[r].update(gap)
        if cfg.regime.heals(g):  # how much of the collapse up to generation heal_after this generation undoes
            start, collapsed = (store.read_metrics(j, required=True) for j in (0, cfg.regime.heal_after))
            for r, recovery in enumerate(metrics.recoveries(values, start, collapsed)):
                values[r].update(recovery)
        for r, named in enumerate(arrays):
            for name, array in named.items():
                out.array(store.array(g, r, name), array)
        rows = [metric_row(g, r, name, v, cfg.seed) for r, metrics in enumerate(values) for name, v in metrics.items()]
        store.write_metrics(g, rows)
        out.written(store.metrics_file(g))
        return rows, {}

    return phase(study, g, "score", lambda: store.read_metrics(g, required=True), compute)


def watermark_rows(study: Study, g: int, model: Model, samples: Samples) -> list[dict[str, float]]:
    """Per replicate, the study key's evidence (docs/watermarks.md): in the model's own draw (closed-model), and
    in its predictions on the newest watermarked corpus up to generation g (open-model: its own corpus while
    it samples with the watermark, so generation 0's rows, from a model that never read watermarked text, are a
    null; afterwards the last watermarked generation's)."""
    cfg, store, V, P = study.cfg, study.store, study.humans[0].vocab_size, study.P
    mark, until = watermark.of(cfg.sample), cfg.sample.watermark_generations
    source = g if not until else min(g, until - 1)
    marked_RNT = np.stack([load_array(store.array(source, r, "samples")) for r in range(study.replicates)])
    predicted_RNT = model.family.top1(model.params, marked_RNT)
    return [{**watermark.evidence(mark, drawn, V, P),
             **watermark.reading_evidence(mark, marked_NT, predicted_NT, V, P)}
            for drawn, marked_NT, predicted_NT in zip(samples.drawn, marked_RNT, predicted_RNT)]


def membership_rows(study: Study, g: int, model: Model) -> list[dict[str, float]]:
    """Per replicate, the released-vs-withheld membership test (docs/membership.md) of generation g's model on
    generation g - 1's released and withheld rows (the corpus it trained on, in part or whole); generation 0's on
    its own, which it drew alike: a null."""
    from collapse.membership import auc, released_vs_withheld

    j, store = max(g - 1, 0), study.store
    released_RNT, withheld_RMT = (np.stack([load_array(store.array(j, r, name)) for r in range(study.replicates)])
                                  for name in ("samples", "withheld"))
    logp_released_RN, logp_withheld_RM = (model.family.logprob(model.params, x, skip=study.P)
                                          for x in (released_RNT, withheld_RMT))
    rows = []
    for released_N, withheld_M in zip(logp_released_RN, logp_withheld_RM):
        t = released_vs_withheld(released_N, withheld_M)
        rows.append({"membership_log10p": t.log10_p, "membership_z": t.z,
                     "membership_auc": auc(t, len(released_N), len(withheld_M))})
    return rows


REPORT_EVERY_S = 60.0  # mid-run, report.md and its figures are redrawn at most this often


class Reports:
    """When a run (re)writes its report (`write`: report.md and its figures, seconds of drawing): after its last
    generation, mid-run once `REPORT_EVERY_S` have passed since the last, and when it stops early with
    generations finished (`on_stop`). metrics.jsonl is rebuilt after every generation regardless."""

    def __init__(self, store: RunDir, write: Callable[[RunDir], object] = report.write):
        self.store, self.write, self.last = store, write, time.monotonic()

    def after(self, last_generation: bool) -> None:
        if is_writer() and (last_generation or time.monotonic() - self.last >= REPORT_EVERY_S):
            self.write(self.store)
            self.last = time.monotonic()

    @contextlib.contextmanager
    def on_stop(self):
        try:
            yield
        except BaseException:
            if is_writer() and self.store.finished_generations():
                with contextlib.suppress(Exception):  # the report of what finished; the error is what matters
                    self.write(self.store)
            raise


def record(study: Study, g: int, rows: list[dict], tracker, seconds: float, reports: Reports) -> None:
    """Generation g's rows to the tracker and the log; the run's metrics.jsonl, last-seen table and (when due,
    `Reports`) its report."""
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
    reports.after(g == study.generations - 1)
