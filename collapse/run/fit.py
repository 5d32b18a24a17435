"""Fit: generation g's model, trained on its training sets (from scratch, or from generation 0's or the previous
model, `train.init`; from its teacher's distributions where `train.target` says so) and checkpointed, with the
training sets' provenance (`collapse.provenance`: origin, label source, prompt row, depth, per-origin scores)."""

from __future__ import annotations

import numpy as np

from collapse import certificate, distill, provenance
from collapse.curation import NoCurateConfig
from collapse.errors import DataError
from collapse.families import PretrainedConfig
from collapse.data.grammar import true_logprob
from collapse.progress import Progress
from collapse.regimes import TrainingSet
from collapse.rng import Phase, numpy_rng
from collapse.run.phase import Model, Outputs, phase
from collapse.run import online
from collapse.run.pools import Lineage
from collapse.files import load_array
from collapse.store import LAZY
from collapse.train import abstract_checkpoint, total_steps


def fit(study, g: int, sets: list[TrainingSet] | None, lineage: Lineage, tracker) -> Model:
    """Generation g's model: trained on `sets` (None: on what it samples as it trains, regime=online) and
    checkpointed, or, when that phase is done, a handle that loads it from its checkpoint (its digest verified)
    when a later phase first needs it."""
    cfg, store, family, R = study.cfg, study.store, study.family(g), study.replicates

    def load():
        online = store.optimizer_state(g) if g and cfg.regime.SAMPLES_WHILE_TRAINING else None
        for path in (store.checkpoint(g), online):  # (the optimiser state the next online generation reads)
            if path is not None and not store.verify(g, "train", only=path):
                raise DataError(path, "changed since it was written")
        return store.load_params(g, family.abstract(R))

    def compute(out: Outputs):
        teacher, trained = None, sets
        healing = cfg.regime.heals(g)
        if sets is None:  # regime=online: the model samples its rows as it trains
            params, trained, losses = online.train(study, g, lineage, tracker, out)
            weights = [None] * R
        else:
            weights = [cfg.regime.loss_weights(ts.provenance) if g and not healing else None for ts in sets]
            if cfg.train.init != "scratch" and isinstance(family.cfg, PretrainedConfig) and (
                    g == 0 or cfg.train.init == "pretrained"):  # the checkpoint (model=pretrained)
                init = family.pretrained(R)
            elif g == 0 or cfg.train.init == "scratch":
                init = family.init(study.keys(g, Phase.INIT))
            else:
                init = lineage.model(0 if cfg.train.init == "gen0" else g - 1).params
            teacher = _teacher(study, g, sets, lineage)
            params, losses = _train(study, g, np.stack([ts.tokens for ts in sets]), init, tracker, teacher,
                                    None if weights[0] is None else np.stack(weights))
        for r, ts in enumerate(trained):
            out.array(store.array(g, r, "train_provenance"), ts.provenance)
            out.array(store.array(g, r, "train_index"), ts.index)
        out.json(store.manifest(g), {
            "generation": g, "regime": cfg.regime.name, **({"healing": True} if healing else {}),
            **({"online": online.manifest(cfg.regime, cfg.data.seq_len)} if sets is None else {}),
            "model": study.model_name(g),
            "parameters": family.parameter_count(),
            "prompt_tokens": study.P,  # the first this many tokens of every synthetic row are human
            "replicates": [{"replicate": r, "size": len(ts.tokens), "counts": ts.counts(study.labs),
                            **({"human_rows": _segments(human)} if study.labs else {}),
                            **({"loss_weight": _loss_weight(w, ts)} if w is not None else {})}
                           for r, (ts, human, w) in enumerate(zip(trained, study.humans, weights))]})
        store.save_params(g, params)
        out.written(store.checkpoint(g))
        out.array(store.train_loss(g), losses)
        store.drop_train_checkpoints(g)
        write_provenance(study, g, trained, lineage.depths[g], params if g == 0 else lineage.model(0).params, out)
        info = {"steps": losses.shape[1], "sequences": len(trained[0].tokens)}
        if teacher is not None:
            info.update(teacher=study.teacher(g), soft_rows=[int(s.sum()) for s in teacher.soft_RN])
        return params, info

    if store.is_done(g, "train") and store.verify(g, "train", lazy=LAZY):
        store.drop_train_checkpoints(g)  # loaded (and its checkpoint verified) only if a later phase needs it
        study.loaded.add((g, "train"))
        return Model(family, load=lambda: phase(study, g, "train", load, compute))
    return Model(family, phase(study, g, "train", load, compute))


def _loss_weight(weights_N: np.ndarray, ts: TrainingSet) -> dict[str, float]:
    """The weight of a human and of a synthetic row in the training loss (`regime.human_weight`)."""
    human_N = ts.provenance < 0
    return {"human": float(weights_N[human_N][0]), "synthetic": float(weights_N[~human_N][0])}


def _segments(human) -> dict[str, int]:
    """A lab's human train rows in an ecosystem: those every lab shares and its own segment."""
    return {"shared": human.shared, "own": len(human.train) - human.shared}


def _teacher(study, g: int, sets: list[TrainingSet], lineage: Lineage) -> distill.Teacher | None:
    """Generation g's teacher (docs/training-targets.md): generation g-1's model (`train.teacher=previous`; in an
    ecosystem, `lab:<name>`: that lab's generation g-1) or generation 0's (`gen0`), with the rows it labels, or
    None: generation 0, `train.target=tokens`, or no row to distil (every row then trains on its tokens)."""
    j = study.teacher(g) if g else -1
    soft_RN = np.stack([provenance.label_sources(study.cfg.train, j, g, ts.provenance) >= 0 for ts in sets])
    if not soft_RN.any():
        return None
    peer = study.teacher_peer()
    teacher = (peer[1] if peer else lineage).model(j)
    return distill.Teacher(teacher.family.graphdef, teacher.params, soft_RN)  # the teacher at its own size


def _train(study, g: int, data_RNT: np.ndarray, init, tracker, teacher=None, weights_RN=None
           ) -> tuple[object, np.ndarray]:
    """Fit every replicate on its own data (each row's loss weighted by `weights_RN`, if given), with progress,
    tracking and mid-generation checkpoints."""
    cfg, store, family = study.cfg, study.store, study.family(g)
    steps = total_steps(data_RNT.shape[1], data_RNT.shape[2], cfg.train)
    rngs = [numpy_rng(study.key(g, r, Phase.TRAIN)) for r in range(study.replicates)]
    checkpoints = None
    if cfg.train.checkpoint_every > 0:
        abstract = abstract_checkpoint(family.abstract(study.replicates), cfg.train, steps, family.layout)
        checkpoints = store.train_checkpoints(g, cfg.train.checkpoint_every, abstract)
    with Progress(steps, f"gen {g} train", "step") as bar:
        def on_chunk(done, loss_RI):
            if not np.isfinite(loss_RI).all():
                bad = int(np.argwhere(~np.isfinite(loss_RI))[0, 1])
                raise FloatingPointError(f"generation {g}: non-finite training loss at step "
                                         f"{done - loss_RI.shape[1] + bad + 1} (lower train.lr?); "
                                         f"generations before {g} are intact in {store.path}")
            bar.update(done - bar.done, loss=float(loss_RI[:, -1].mean()))
            tracker.train_loss(g, done, loss_RI[:, -1])

        if checkpoints is not None and checkpoints.restored is not None:
            bar.update(checkpoints.restored[0])
        return family.fit(init, data_RNT, rngs, cfg.train, on_chunk, checkpoints, teacher, weights_RN)


def write_provenance(study, g: int, sets: list[TrainingSet], depths_R: np.ndarray, params0_R, out: Outputs) -> None:
    """Generation g's training sets' lineage: each example's label source and, in continuation mode, the human
    row its prefix comes from; `provenance.json`, whose per-origin scores take one forward pass of generation
    0's model over the training set and the human test split (their out-of-sample reference), and on the
    grammar the exact truth over both."""
    cfg, store, P = study.cfg, study.store, study.P
    teacher = study.teacher(g) if g else -1
    labels = [provenance.label_sources(cfg.train, teacher, g, ts.provenance) for ts in sets]
    codes = [provenance.origins(ts.provenance, ts.lab) for ts in sets]  # (lab,) generation of every example
    name = provenance.origin_namer(study.labs)
    peer = study.teacher_peer()
    label = (lambda j: "hard" if j < 0 else f"soft_{peer[0].name}/gen_{j}") if peer else provenance.label_name
    for r, ts in enumerate(sets):
        out.array(store.array(g, r, "train_label_source"), labels[r])
        if ts.lab is not None:
            out.array(store.array(g, r, "train_lab"), ts.lab)
        if P:
            out.array(store.array(g, r, "train_prompt_row"), provenance.prompt_rows(
                codes[r], ts.index, lambda c: load_array(study.origin_study(c).store.array(
                    c % provenance.LAB_CODE, r, "prompt_index"))))
    tokens_RNT, test_RMT = np.stack([ts.tokens for ts in sets]), np.stack([human.test for human in study.humans])
    n = tokens_RNT.shape[2] - P  # scored tokens per example, as in the metrics
    nll0_RN, test_nll0_RM = (-study.family(0).logprob(params0_R, x, skip=P).astype(np.float64) / n
                             for x in (tokens_RNT, test_RMT))
    scores = []
    for r, (ts, human) in enumerate(zip(sets, study.humans)):
        seen_N = (ts.provenance < 0) & (ts.index < study.n_train)  # human train rows: generation 0 trained on them
        true_N, test_true_M = (None, None) if human.truth is None else (
            -true_logprob(human.truth, x, P) / n for x in (ts.tokens, human.test))
        scores.append(provenance.origin_scores(codes[r], nll0_RN[r], seen_N, true_N, test_nll0_RM[r], test_true_M,
                                               name))
    curated = None
    curating = lambda c: not isinstance(study.origin_study(c).cfg.curate, NoCurateConfig)  # noqa: E731
    if curating(-1) or any(curating(int(c)) for cs in codes for c in np.unique(cs[cs >= 0])):  # how each origin
        # of the training set was curated (this study's curation, or a peer's whose samples it trains on)
        curated = [{name(int(c)): provenance.curation_summary(
            *(load_array(study.origin_study(int(c)).store.array(int(c) % provenance.LAB_CODE, r, array))
              for array in ("curate_scores", "curate_kept", "curate_scores_kept")))
            for c in np.unique(cs[cs >= 0]) if curating(int(c))} for r, cs in enumerate(codes)]
    record = provenance.generation_record(g, study.model_name(g), study.family(g).parameter_count(), P, codes,
                                          labels, depths_R, scores, curated, name, label)
    if not (study.crawls and g):  # the data certificate (collapse.certificate); not of a crawl, whose new human
        # rows are in no file
        record["certificate"] = certificate.record(store, sets, study.humans, study.labs,
                                                   lambda c: study.origin_study(c).store)
    out.json(store.provenance(g), record)
