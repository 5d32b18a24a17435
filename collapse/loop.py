"""The generational loop: the only code that knows about generations, phases and resume.

    for generation g = 0, 1, ...:
        training set  = regime(human data, samples of generations < g)     (generation 0: the human train split)
        depth_g       = mean synthetic depth of the training set            (human 0, a sample of j: 1 + depth_j)
        model_g       = fit(init, training set)                             -> checkpoint, provenance.json
        candidates_g  = sample(model_g)                                     -> M iid draws (M = n without curation)
        samples_g     = curate(candidates_g)                                -> the synthetic corpus: n of them
        metrics_g     = score(model_g, model_0, candidates_g[:n], human data) + curation -> metrics.jsonl, report

Each of fit, sample (with curate) and score is a phase with a marker: a phase marked done whose outputs are intact is
loaded instead of recomputed, so rerunning a study on its directory continues where it stopped. Every key
derives from (seed, generation, replicate, phase), so the numbers are those of an uninterrupted run. A
model is loaded from its checkpoint (and its digest verified) only when a later phase needs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from collapse import provenance, regimes, report, train
from collapse.config import (AnalyticConfig, Config, CorrectCurateConfig, DetectorCurateConfig, NoCurateConfig,
                             PerplexityCurateConfig, prompt_tokens, schedule_name, to_dict)
from collapse.curation import scores as curate_scores
from collapse.curation import select as curation
from collapse.errors import DataError
from collapse.validate import validate
from collapse.metrics import score, tails
from collapse.progress import Progress
from collapse.rng import Phase, for_round, key_for, numpy_rng, replicate_keys
from collapse.store import RunDir, is_writer, load_array, load_json, save_array, save_json
from collapse.study import Study, check_same_study, open_study, save_human
from collapse.tracking import make_tracker
from collapse.train import abstract_checkpoint, total_steps

log = logging.getLogger("collapse")
logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save step at INFO

Model = Callable[[], object]  # the parameters of all replicates, loaded or trained on first call


def run(cfg: Config, run_dir: str | Path, on_open: Callable[[RunDir], None] | None = None) -> RunDir:
    """Run (or resume) the study `cfg` in `run_dir`. Every input is checked before anything is written.
    `on_open(store)` is called once the directory's lock is held and the study accepted, before this writes
    anything (the `collapse` command then records its launch there); a refused study never calls it.

    Process-wide JAX settings (CPU device split, multi-process start, compilation cache) are the caller's:
    the `collapse` command sets them up (`collapse.cli.set_up_jax`)."""
    validate(cfg)
    store = RunDir(run_dir)
    check_same_study(store, cfg)
    if isinstance(cfg.model, AnalyticConfig):  # closed-form families: the whole study is one compiled program
        return _run_analytic(cfg, store, on_open)
    study = open_study(cfg, store)
    with _opened(store, on_open), contextlib.closing(make_tracker(cfg, store.path)) as tracker:
        save_human(study)
        log.info("run directory %s | %d generations x %d replicates | regime=%s | %s, sharded by %s",
                 store.path, cfg.generations, cfg.replicates, cfg.regime.name, study.device,
                 "replicate" if study.layout.by_replicate or study.layout.n == 1 else "batch")
        model_0 = model = None
        synthetic: list[list[np.ndarray]] = []  # [generation][replicate] -> samples [N, T]
        depths: list[np.ndarray] = []  # [generation] -> [R] mean synthetic depth of its training set
        for g in range(cfg.generations):
            t0 = time.perf_counter()
            train_sets = _training_sets(study, g, synthetic)
            depths.append(provenance.mean_depths([ts.provenance for ts in train_sets], depths))
            model = _fit(study, g, train_sets, depths[g], model_0, model, tracker)
            model_0 = model_0 or model
            samples = _sample(study, g, model, model_0)
            synthetic.append(samples.kept)
            rows = _score(study, g, model, model_0, samples)
            _record(study, g, rows, tracker, time.perf_counter() - t0)
    return store


@contextlib.contextmanager
def _opened(store: RunDir, on_open: Callable[[RunDir], None] | None):
    """Hold the run directory's lock, then tell `on_open` (see `run`)."""
    with store.lock():
        if on_open is not None:
            on_open(store)
        yield store


# --------------------------------------------------------------------------------------------- phases


def _phase(study: Study, g: int, name: str, load: Callable, compute: Callable):
    """The result of phase `name` of generation g: `load()` if the phase is marked done and its outputs are
    intact, else `compute() -> (result, output paths, info)`, marked done with the outputs' digests. Every
    phase is a deterministic function of the config and the phases before it, so recomputing is safe."""
    store = study.store
    if store.is_done(g, name):
        if store.verify(g, name, lazy=("checkpoint",)):
            try:
                return load()
            except DataError:
                pass
        log.warning("%s: outputs missing or damaged; recomputing phase %s of generation %d",
                    store.marker(g, name), name, g)
    t0 = time.perf_counter()
    result, outputs, info = compute()
    store.mark_done(g, name, {"seconds": time.perf_counter() - t0, "device": study.device, **info}, outputs)
    return result


def _save(outputs: list[Path], path: Path, array: np.ndarray) -> None:
    """Write a phase output and record it for the phase marker's digests."""
    save_array(path, array)
    outputs.append(path)


def _training_sets(study: Study, g: int, synthetic: list[list[np.ndarray]]) -> list[regimes.TrainingSet]:
    """The regime step: each replicate's training set for generation g, with every example's provenance."""
    return [regimes.build(study.cfg.regime, g, human.train, human.fresh, [s[r] for s in synthetic],
                          numpy_rng(key_for(study.cfg.seed, g, r, Phase.REGIME)))
            for r, human in enumerate(study.humans)]


def _fit(study: Study, g: int, sets: list[regimes.TrainingSet], depths_R: np.ndarray, model_0: Model | None,
         previous: Model | None, tracker) -> Model:
    """Generation g's model: trained on `sets` (from scratch, or from generation 0's or the previous model,
    `train.init`) and checkpointed, with the training sets' provenance (`_provenance`), or loaded from its
    checkpoint when a later phase first needs it."""
    cfg, store, family, R = study.cfg, study.store, study.family(g), study.replicates

    def load():
        if not store.verify(g, "train", only=store.checkpoint(g)):
            raise DataError(store.checkpoint(g), "checkpoint changed since it was written")
        return store.load_params(g, family.abstract(R))

    def compute():
        outputs = [store.gen(g) / "manifest.json", store.gen(g) / "train_loss.npy", store.checkpoint(g),
                   store.gen(g) / "provenance.json"]
        for r, ts in enumerate(sets):
            _save(outputs, store.rep(g, r) / "train_provenance.npy", ts.provenance)
            _save(outputs, store.rep(g, r) / "train_index.npy", ts.index)
        save_json(store.gen(g) / "manifest.json", {
            "generation": g, "regime": cfg.regime.name, "model": schedule_name(cfg, g),
            "parameters": family.parameter_count(),
            "prompt_tokens": prompt_tokens(cfg),  # the first this many tokens of every synthetic row are human
            "replicates": [{"replicate": r, "size": len(ts.tokens), "counts": ts.counts()}
                           for r, ts in enumerate(sets)]})
        if g == 0 or cfg.train.init == "scratch":
            init = family.init(replicate_keys(cfg.seed, g, R, Phase.INIT))
        else:
            init = (model_0 if cfg.train.init == "gen0" else previous)()
        teacher = _teacher(study, g, sets, model_0, previous)
        params, losses = _train(study, g, np.stack([ts.tokens for ts in sets]), init, tracker, teacher)
        store.save_params(g, params)
        save_array(store.gen(g) / "train_loss.npy", losses)
        store.drop_train_checkpoints(g)
        _provenance(study, g, sets, depths_R, params if g == 0 else model_0(), outputs)
        info = {"steps": losses.shape[1], "sequences": len(sets[0].tokens)}
        if teacher is not None:
            info.update(teacher=provenance.teacher_generation(cfg, g), soft_rows=[int(s.sum()) for s in teacher.soft_RN])
        return params, outputs, info

    if store.is_done(g, "train") and store.verify(g, "train", lazy=("checkpoint",)):
        store.drop_train_checkpoints(g)  # loaded (and its checkpoint verified) only if a later phase needs it
        return functools.cache(lambda: _phase(study, g, "train", load, compute))
    params = _phase(study, g, "train", load, compute)
    return lambda: params


def _provenance(study: Study, g: int, sets: list[regimes.TrainingSet], depths_R: np.ndarray, params0_R,
                outputs: list[Path]) -> None:
    """Generation g's training sets' lineage (`collapse.provenance`): each example's label source and, in
    continuation mode, the human row its prefix comes from; `provenance.json`, whose per-origin scores take one
    forward pass of generation 0's model over the training set and the human test split (their out-of-sample
    reference), and on the grammar the exact truth over both."""
    cfg, store, P = study.cfg, study.store, prompt_tokens(study.cfg)
    labels = [provenance.label_sources(cfg, g, ts.provenance) for ts in sets]
    for r, ts in enumerate(sets):
        _save(outputs, store.rep(g, r) / "train_label_source.npy", labels[r])
        if P:
            _save(outputs, store.rep(g, r) / "train_prompt_row.npy",
                  provenance.prompt_rows(ts.provenance, ts.index, lambda j: _kept_prompt_index(study, j, r)))
    tokens_RNT, test_RMT = np.stack([ts.tokens for ts in sets]), np.stack([human.test for human in study.humans])
    n = tokens_RNT.shape[2] - P  # scored tokens per example, as in the metrics
    nll0_RN, test_nll0_RM = (-study.family(0).logprob(params0_R, x, skip=P).astype(np.float64) / n
                             for x in (tokens_RNT, test_RMT))
    scores = []
    for r, (ts, human) in enumerate(zip(sets, study.humans)):
        seen_N = (ts.provenance < 0) & (ts.index < study.n_train)  # human train rows: generation 0 trained on them
        true_N, test_true_M = (None, None) if human.truth is None else (
            -score.true_logprob(human.truth, x, P) / n for x in (ts.tokens, human.test))
        scores.append(provenance.origin_scores(ts.provenance, nll0_RN[r], seen_N, true_N, test_nll0_RM[r], test_true_M))
    curated = None
    if not isinstance(cfg.curate, NoCurateConfig):  # how each synthetic origin's samples were curated
        curated = [{provenance.origin_name(int(j)): provenance.curation_summary(
            load_array(store.rep(int(j), r) / "curate_scores.npy"), load_array(store.rep(int(j), r) / "curate_kept.npy"),
            load_array(store.rep(int(j), r) / "curate_scores_kept.npy"))
            for j in np.unique(ts.provenance[ts.provenance >= 0])} for r, ts in enumerate(sets)]
    save_json(store.gen(g) / "provenance.json", provenance.generation_record(
        g, schedule_name(cfg, g), study.family(g).parameter_count(), P, [ts.provenance for ts in sets], labels,
        depths_R, scores, curated))


def _teacher(study: Study, g: int, sets: list[regimes.TrainingSet], model_0: Model | None,
             previous: Model | None) -> train.Teacher | None:
    """Generation g's teacher (README "Training targets"): generation g-1's model (`train.teacher=previous`)
    or generation 0's (`gen0`), with the rows it labels (`provenance.label_sources`), or None: generation 0,
    `train.target=tokens`, or no row to distil (every row then trains on its tokens)."""
    soft_RN = np.stack([provenance.label_sources(study.cfg, g, ts.provenance) >= 0 for ts in sets])
    if not soft_RN.any():
        return None
    j = provenance.teacher_generation(study.cfg, g)
    model = model_0 if j == 0 else previous
    return train.Teacher(study.family(j).graphdef, model(), soft_RN)  # the teacher at its own size


def _train(study: Study, g: int, data_RNT: np.ndarray, init, tracker, teacher=None) -> tuple[object, np.ndarray]:
    """Fit every replicate on its own data, with progress, tracking and mid-generation checkpoints."""
    cfg, store, family = study.cfg, study.store, study.family(g)
    steps = total_steps(data_RNT.shape[1], data_RNT.shape[2], cfg.train)
    rngs = [numpy_rng(key_for(cfg.seed, g, r, Phase.TRAIN)) for r in range(study.replicates)]
    checkpoints = None
    if cfg.train.checkpoint_every > 0:
        abstract = abstract_checkpoint(family.abstract(study.replicates), cfg.train, steps, family.layout)
        checkpoints = store.train_checkpoints(g, cfg.train.checkpoint_every, abstract)
    with Progress(steps, f"gen {g} train", "step") as bar:
        def on_chunk(done, loss_RS):
            if not np.isfinite(loss_RS).all():
                bad = int(np.argwhere(~np.isfinite(loss_RS))[0, 1])
                raise FloatingPointError(f"generation {g}: non-finite training loss at step "
                                         f"{done - loss_RS.shape[1] + bad + 1} (lower train.lr?); "
                                         f"generations before {g} are intact in {store.path}")
            bar.update(done - bar.done, loss=float(loss_RS[:, -1].mean()))
            tracker.train_loss(g, done, loss_RS[:, -1])

        if checkpoints is not None and checkpoints.restored is not None:
            bar.update(checkpoints.restored[0])
        return family.fit(init, data_RNT, rngs, cfg.train, on_chunk, checkpoints, teacher)


def _prompt_index(study: Study, g: int, r: int, m: int = 0, round: int = 0) -> np.ndarray:
    """Continuation mode: the human train rows whose prefixes generation g's `m` candidates (default n, the
    synthetic budget) of replicate r continue, in round `round`."""
    m = m or study.cfg.sample.num_sequences or study.n_train
    rng = numpy_rng(for_round(key_for(study.cfg.seed, g, r, Phase.SAMPLE), round))
    return rng.choice(study.n_train, m, replace=m > study.n_train)


def _kept_prompt_index(study: Study, g: int, r: int) -> np.ndarray:
    """The human train rows whose prefixes generation g's synthetic corpus (after curation) continues."""
    if isinstance(study.cfg.curate, NoCurateConfig):
        return _prompt_index(study, g, r)
    return load_array(study.store.rep(g, r) / "prompt_index.npy")


@dataclasses.dataclass(frozen=True)
class Samples:
    """Generation g's synthetic data per replicate `[n, T]`: `kept` joins the pools (the curated corpus) and
    `drawn` is the model's own iid draw of the same size, which the metrics measure (the first n candidates
    of round 0; `kept` itself without curation); `curated`: each replicate's curation (empty without)."""

    kept: list[np.ndarray]
    drawn: list[np.ndarray]
    curated: list[curation.Curated]


def _draw(study: Study, g: int, model: Model, m: int, round: int = 0) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """`m` sequences per replicate from generation g's model `[R, m, T]` (round `round`'s keys: round 0 is the
    stream of a run without curation): from BOS, or in continuation mode a human train prefix of P tokens
    followed by the model's continuation of T - P tokens; and the prompts' train rows (None: unconditional)."""
    cfg, R, P = study.cfg, study.replicates, prompt_tokens(study.cfg)
    if P:
        index = [_prompt_index(study, g, r, m, round) for r in range(R)]
        prompts = np.stack([human.train[i, :P] for human, i in zip(study.humans, index)])
    else:
        index, prompts = None, np.zeros((R, m, 0), np.int32)
    keys = for_round(replicate_keys(cfg.seed, g, R, Phase.SAMPLE), round)
    with Progress(m, f"gen {g} sample" + (f" round {round}" if round else ""), "seq") as bar:
        new = study.family(g).sample(model(), prompts, keys, cfg.sample, cfg.data.seq_len - P,
                                     on_batch=lambda b: bar.update(min(b, m - bar.done)))
    return np.concatenate([prompts.astype(np.int32), new], axis=2), index


def _candidate_scores(study: Study, g: int, round: int, tokens_RMT: np.ndarray, model: Model, model_0: Model
                      ) -> np.ndarray:
    """The curation scores `[R, M]` of round `round`'s candidates: perplexity per generated token under
    generation 0's or g's model, or a verifier's score (the truth's log-probability per generated token, its
    log-ratio to generation g's model's, or the user's function) plus its noise (key: seed, generation, replicate, Phase.CURATE, round)."""
    c, P = study.cfg.curate, prompt_tokens(study.cfg)
    generated = tokens_RMT.shape[2] - P
    if isinstance(c, PerplexityCurateConfig):
        j, params = (0, model_0()) if c.model == "gen0" else (g, model())
        return curate_scores.perplexity(study.family(j).logprob(params, tokens_RMT, skip=P), generated)
    own_RM = study.family(g).logprob(model(), tokens_RMT, skip=P) if c.scorer == "truth_ratio" else None
    out = []
    for r, human in enumerate(study.humans):
        if c.scorer in ("truth", "truth_ratio"):
            s_M = curate_scores.truth(human.truth, tokens_RMT[r], P)
            s_M = s_M if own_RM is None else curate_scores.log_ratio(s_M, own_RM[r], generated)
        else:
            s_M = curate_scores.user(c.scorer, tokens_RMT[r], P)
        out.append(curate_scores.noisy(s_M, c.noise, numpy_rng(for_round(key_for(study.cfg.seed, g, r, Phase.CURATE),
                                                                          round))))
    return np.stack(out)


def _curate(study: Study, g: int, model: Model, model_0: Model, n: int
            ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray] | None, list[curation.Curated]]:
    """Generation g's curation (README "Curation"): per replicate the candidates drawn `[M, T]`, the kept
    corpus `[n, T]`, the kept rows' prompt rows (continuation mode) and the `Curated` summary. `correct`
    rewrites n draws toward the truth; the selections draw M per round and keep n (`curation.select`)."""
    cfg, P = study.cfg, prompt_tokens(study.cfg)
    c = cfg.curate
    if isinstance(c, CorrectCurateConfig):
        from collapse.data import grammar

        tokens_RNT, index = _draw(study, g, model, n)
        kept, curated = [], []
        for r, human in enumerate(study.humans):
            fix = grammar.correct if c.unit == "token" else grammar.correct_sequences
            fixed_NT = np.asarray(fix(human.truth, key_for(cfg.seed, g, r, Phase.CURATE), tokens_RNT[r], P, c.fraction),
                                  np.int32)
            changed, generated = curation.corrections(tokens_RNT[r], fixed_NT, P)
            kept.append(fixed_NT)
            curated.append(curation.Curated(np.arange(n), curate_scores.truth(human.truth, tokens_RNT[r], P),
                                            curate_scores.truth(human.truth, fixed_NT, P), changed=changed,
                                            generated=generated))
        return list(tokens_RNT), kept, index, curated
    M, rounds = curation.candidates_per_round(c, n), []
    if isinstance(c, DetectorCurateConfig):  # cross-fitted detectors score the candidates; resample n of them
        from collapse.curation import detector

        # M < n: the metrics still measure an iid draw of n (the n - M beyond the candidates are only measured)
        tokens_RMT, index = _draw(study, g, model, max(M, n))
        curated = []
        for r, human in enumerate(study.humans):
            key = key_for(cfg.seed, g, r, Phase.CURATE)
            p_M, accuracy, used = detector.cross_fitted(
                key, human.train, tokens_RMT[r, :M], prompt_tokens=P, vocab_size=human.vocab_size, steps=c.steps,
                lr=c.lr, d_embed=c.d_embed, holdout=c.holdout, significance=c.significance)
            kept_n = curation.select_importance(p_M, n, c, numpy_rng(for_round(key, 1)), f"generation {g}: ")
            curated.append(curation.Curated(kept_n, p_M, p_M[kept_n], accuracy=accuracy, used=used,
                                            ess=curation.importance_ess(p_M, c)))
        kept = [tokens_RMT[r][cur.kept_n] for r, cur in enumerate(curated)]
        return list(tokens_RMT), kept, None if not P else [ix[cur.kept_n] for ix, cur in zip(index, curated)], curated

    def scored_round(k: int) -> np.ndarray:
        rounds.append(_draw(study, g, model, M, k))
        return _candidate_scores(study, g, k, rounds[-1][0], model, model_0)

    curated = curation.select(c, n, scored_round, f"generation {g}: ")
    used = [len(cur.scores_M) // M for cur in curated]  # rounds each replicate drew from
    candidates = [np.concatenate([tokens_RMT[r] for tokens_RMT, _ in rounds[:k]]) for r, k in enumerate(used)]
    kept = [cand[cur.kept_n] for cand, cur in zip(candidates, curated)]
    index = None if not P else [np.concatenate([ix[r] for _, ix in rounds[:k]])[cur.kept_n]
                                for r, (k, cur) in enumerate(zip(used, curated))]
    return candidates, kept, index, curated


def _sample(study: Study, g: int, model: Model, model_0: Model) -> Samples:
    """Generation g's synthetic corpus per replicate `[N, T]`, and with curation the candidates behind it and
    what the curation did (`Samples`). Curation belongs to this phase: its candidates are in memory, the kept
    corpus is a deterministic function of them and the models, and one marker covers both (a kill before it is
    written draws the candidates again, with the same keys)."""
    cfg, store, R = study.cfg, study.store, study.replicates
    n, curate = cfg.sample.num_sequences or study.n_train, not isinstance(cfg.curate, NoCurateConfig)

    def compute():
        if curate:
            candidates, kept, index, curated = _curate(study, g, model, model_0, n)
        else:
            tokens, index = _draw(study, g, model, n)
            candidates = kept = list(tokens)
            curated = []
        outputs = []
        for r in range(R):
            arrays = {"samples.npy": kept[r], "provenance.npy": np.full(n, g, np.int32)}
            if index is not None:
                arrays["prompt_index.npy"] = index[r]
            if curate:
                cur = curated[r]
                arrays.update({"candidates.npy": candidates[r], "curate_scores.npy": cur.scores_M,
                               "curate_kept.npy": cur.kept_n, "curate_scores_kept.npy": cur.kept_scores_n})
                if cur.accuracy is not None:
                    arrays["curate_detector_accuracy.npy"] = np.float64(cur.accuracy)
                    arrays["curate_detector_used.npy"] = np.float64(cur.used)
            for name, array in arrays.items():
                _save(outputs, store.rep(g, r) / name, array)
        info = {"candidates": [len(cur.scores_M) for cur in curated]} if curate else {}  # drawn, all rounds
        return Samples(kept, [c[:n] for c in candidates], curated), outputs, info

    def load():
        kept = [load_array(store.rep(g, r) / "samples.npy") for r in range(R)]
        if not curate:
            return Samples(kept, kept, [])
        drawn, curated = [], []
        for r in range(R):
            rep = store.rep(g, r)
            candidates = load_array(rep / "candidates.npy")
            kept_n, scores_M = load_array(rep / "curate_kept.npy"), load_array(rep / "curate_scores.npy")
            passed = int((scores_M >= cfg.curate.threshold).sum()) if curation.thresholded(cfg.curate) else None
            changed, generated = (curation.corrections(candidates[kept_n], kept[r], prompt_tokens(cfg))
                                  if isinstance(cfg.curate, CorrectCurateConfig) else (None, 0))
            detector = {}
            if isinstance(cfg.curate, DetectorCurateConfig):
                detector = dict(accuracy=float(load_array(rep / "curate_detector_accuracy.npy")),
                                used=float(load_array(rep / "curate_detector_used.npy")),
                                ess=curation.importance_ess(scores_M, cfg.curate))
            drawn.append(candidates[:n])
            curated.append(curation.Curated(kept_n, scores_M, load_array(rep / "curate_scores_kept.npy"), passed,
                                            changed, generated, **detector))
        return Samples(kept, drawn, curated)

    return _phase(study, g, "sample", load, compute)


def _score(study: Study, g: int, model: Model, model_0: Model, samples: Samples) -> list[dict]:
    """Generation g's metric rows (docs/metrics.md), and the per-sequence and per-type arrays behind them: the
    model's own draw (`samples.drawn`), what the curation did (`curate_*` rows) and, from generation 1 on, the
    gap to its teacher (`teacher_gap_*`)."""
    cfg, store = study.cfg, study.store

    def compute():
        # Subsets are drawn afresh for every generation and replicate: the rows of a corpus are exchangeable,
        # so fixed sizes (not fixed positions) make generations comparable; the replicate spread includes them.
        rngs = [numpy_rng(key_for(cfg.seed, g, r, Phase.SCORE)) for r in range(study.replicates)]
        params = model()
        params_0 = params if model_0 is model else model_0()
        values, arrays = score.generation_metrics(cfg.metrics, study.family(g), params, params_0, study.humans,
                                                  study.refs, samples.drawn, rngs, family0=study.family(0))
        for r, curated in enumerate(samples.curated):
            values[r].update(curated.metrics())
        if g:  # the student - teacher gap, against the teacher generation's own rows (finished before g)
            teacher = provenance.teacher_generation(cfg, g)
            for r, gap in enumerate(score.teacher_gaps(values, store.read_metrics(teacher, required=True))):
                values[r].update(gap)
        outputs = [store.gen(g) / "metrics.jsonl"]
        for r, named in enumerate(arrays):
            for name, array in named.items():
                _save(outputs, store.rep(g, r) / f"{name}.npy", array)
        rows = [{"generation": g, "replicate": r, "metric": name, "value": v, "seed": cfg.seed}
                for r, metrics in enumerate(values) for name, v in metrics.items()]
        store.write_metrics(g, rows)
        return rows, outputs, {}

    return _phase(study, g, "score", lambda: store.read_metrics(g, required=True), compute)


def _record(study: Study, g: int, rows: list[dict], tracker, seconds: float) -> None:
    """Generation g's rows to the tracker and the log; the run's metrics.jsonl, last-seen table and report."""
    tracker.metrics(g, rows)
    report.print_generation(g, rows, seconds)
    store = study.store
    if not is_writer():  # the run-level files are process 0's, whose markers the others may not see yet
        return
    store.rebuild_metrics()
    last = store.finished_generations()[-1]  # from the files, so a resumed run gets the same
    counts_GRV = np.stack([[load_array(store.rep(j, r) / "token_counts.npy") for r in range(study.replicates)]
                           for j in range(last + 1)])
    save_array(store.last_seen, tails.last_seen(counts_GRV))
    report.write(store)


# --------------------------------------------------------------------------------------- analytic families


def _run_analytic(cfg: Config, store: RunDir, on_open: Callable[[RunDir], None] | None = None) -> RunDir:
    """Run (or find finished) an analytic study: one compiled program computes every generation
    (`collapse.families.analytic.simulate`), so one marker covers all of them. A rerun with at most the
    finished number of generations recomputes nothing; more generations recompute the study (seconds), and
    the earlier generations come out the same."""
    import jax

    from collapse.families import analytic

    analytic.check(cfg)
    if store.program_marker.exists() and load_json(store.program_marker).get("generations", 0) >= cfg.generations:
        log.info("%s: all %d generations done", store.path, cfg.generations)
        report.write(store)
        return store
    G, R = cfg.generations, cfg.replicates
    with _opened(store, on_open):
        save_json(store.path / "config.json", to_dict(cfg))
        device = jax.devices()[0].device_kind
        log.info("run directory %s | %s | %d generations x %d replicates | regime=%s | device %s",
                 store.path, to_dict(cfg)["model"]["_option"], G, R, cfg.regime.name, device)
        sim = analytic.simulate(cfg, snapshots=report.shown_generations(list(range(G))))
        save_array(store.path / "params" / "generation.npy", sim.generations)
        for name, array in sim.params.items():
            save_array(store.path / "params" / f"{name}.npy", array)
        values = {name: v.tolist() for name, v in sim.metrics.items()}
        defined = lambda x: x if math.isfinite(x) else None  # noqa: E731 (undefined, e.g. a slope of < 2 ranks)
        rows = [{"generation": g, "replicate": r, "metric": name, "value": defined(v[g][r]), "seed": cfg.seed}
                for g in range(G) for r in range(R) for name, v in values.items()]
        store.write_run_metrics(rows)
        save_json(store.program_marker, {"generations": G, "replicates": R, "seconds": sim.seconds,
                                         "compile_seconds": sim.compile_seconds, "device": device})
        report.print_generation(G - 1, [row for row in rows if row["generation"] == G - 1],
                                sim.seconds + sim.compile_seconds)
        report.write(store, rows)
    return store
