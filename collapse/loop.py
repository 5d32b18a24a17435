"""The generational loop: the only code that knows about generations, phases and resume.

Each generation runs three phases: train (regime → training set → fit → checkpoint), sample (synthetic
corpus) and score (metric rows). A phase whose marker exists is loaded instead of recomputed, so
rerunning a study on its directory continues where it stopped; every key derives from
(seed, generation, replicate, phase), so the numbers are those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import jax
import numpy as np

from collapse import devices, regimes, report
from collapse.config import (RESUMABLE_KEYS, TRANSFORMER_MODELS, AnalyticConfig, Config, ConfigError, DataError,
                             TokenizedConfig, batch_sizes, from_dict, prompt_tokens, to_dict, validate)
from collapse.data import HumanData, load_human, per_replicate
from collapse.families.transformer import TransformerFamily
from collapse.metrics import score, tails
from collapse.progress import Progress
from collapse.rng import HUMAN_STREAM, Phase, key_for, numpy_rng, replicate_keys
from collapse.store import RunDir, load_array, load_json, save_array, save_json
from collapse.tracking import make_tracker
from collapse.train import abstract_checkpoint, total_steps

log = logging.getLogger("collapse")
logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save step at INFO


def run(cfg: Config, run_dir: str | Path) -> RunDir:
    """Run (or resume) the study `cfg` in `run_dir`. Every input is checked before anything is written."""
    validate(cfg)
    if not isinstance(cfg.model, AnalyticConfig):
        devices.use_cpu_devices(cfg.cpu_devices, cfg.replicates, batch_sizes(cfg))
    devices.initialize()
    if cfg.compilation_cache:  # repeated sweep jobs reuse compiled programs
        jax.config.update("jax_compilation_cache_dir", str(Path(cfg.compilation_cache).expanduser()))
    store = RunDir(run_dir)
    _check_same_study(store, cfg)
    if isinstance(cfg.model, AnalyticConfig):  # closed-form families: the whole study is one compiled program
        from collapse.families import analytic

        return analytic.run(cfg, store)
    humans = _load_human(cfg, store)  # [R]: each replicate's human data (one shared object for text)
    human = humans[0]  # sizes and vocabulary are the same for every replicate
    n_syn = cfg.sample.num_sequences or len(human.train)
    regimes.check_sizes(cfg.regime, cfg.generations, len(human.train), n_syn, cfg.train.batch_size)
    if isinstance(cfg.data, TokenizedConfig):  # the grammar draws as many fresh rows as the study needs
        regimes.check_fresh(cfg.regime, cfg.generations, len(human.train), len(human.fresh), cfg.data.fresh_fraction)
    layout = devices.make_layout(cfg.replicates, batch_sizes(cfg))
    refs = {id(h): score.reference(h, cfg.metrics, prompt_tokens(cfg)) for _, h in _datasets(cfg, humans)}
    refs = [refs[id(h)] for h in humans]
    with store.lock(), contextlib.closing(make_tracker(cfg, store.path)) as tracker:
        _save_human(store, cfg, humans, refs)
        family = TransformerFamily(cfg.model, human.vocab_size, layout)
        device = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
        log.info("run directory %s | %d generations x %d replicates | regime=%s | %s, sharded by %s",
                 store.path, cfg.generations, cfg.replicates, cfg.regime.name, device,
                 "replicate" if layout.by_replicate or layout.n == 1 else "batch")
        params0 = params = None
        synthetic: list[list[np.ndarray]] = []  # [generation][replicate] -> samples [N, T]
        for g in range(cfg.generations):
            t0 = time.perf_counter()
            params = _train_phase(cfg, store, family, humans, synthetic, g, params0, params, device, tracker)
            params0 = params if g == 0 else params0
            synthetic.append(_sample_phase(cfg, store, family, humans, g, params, device))
            rows = _score_phase(cfg, store, family, humans, refs, g, params, params0, synthetic[g], device)
            tracker.metrics(g, rows)
            report.print_generation(g, rows, time.perf_counter() - t0)
            _rebuild_run_summaries(store, cfg)
            report.write(store)
    return store


def _done(store: RunDir, g: int, phase: str, load):
    """`load()` the outputs of a phase marked done, or None if it is not done or any output it recorded is
    missing, changed or unreadable: then the phase is recomputed, safely, since every phase is a
    deterministic function of the config and the phases before it."""
    if not store.is_done(g, phase):
        return None
    if store.verify(g, phase):
        try:
            return load()
        except DataError:
            pass
    log.warning("%s: outputs missing or damaged; recomputing phase %s of generation %d",
                store.marker(g, phase), phase, g)
    return None


# --------------------------------------------------------------------------------------------- set-up


def _check_same_study(store: RunDir, cfg: Config) -> None:
    path = store.path / "config.json"
    if not path.exists():
        return
    try:  # through the schemas, so keys added since the run was written compare at their defaults
        old = to_dict(from_dict(load_json(path)))
    except (KeyError, TypeError, AttributeError) as e:
        raise DataError(path, f"is not a collapse config ({type(e).__name__}: {e})") from None
    new = to_dict(cfg)
    if old["model"]["_option"] == "transformer" and new["model"]["_option"] in TRANSFORMER_MODELS:
        old["model"]["_option"] = new["model"]["_option"]  # written before config.json named the model size
    differ = sorted(_diff(old, new) - set(RESUMABLE_KEYS))
    if differ:
        raise ConfigError(differ[0], f"{store.path} holds a different study (changed: {', '.join(differ)}); "
                          "resume it with its own config or choose a new out_dir")
    if old["generations"] > cfg.generations:
        log.info("%s has %d generations configured; running %d", store.path, old["generations"], cfg.generations)


def _diff(a: dict, b: dict, prefix: str = "") -> set[str]:
    keys = set(a) | set(b)
    out = set()
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.add(f"{prefix}{k}")
    return out


def _datasets(cfg: Config, humans: list[HumanData]) -> list[tuple[int | None, HumanData]]:
    """(replicate slot in `human/`, data) per distinct human dataset: every replicate's own on the grammar,
    else the one the replicates share (slot None: `human/` itself)."""
    return list(enumerate(humans)) if per_replicate(cfg) else [(None, humans[0])]


def _load_human(cfg: Config, store: RunDir) -> list[HumanData]:
    """Every replicate's human data; on resume it must equal what the run directory holds (an unreadable copy
    there is rewritten by `_save_human`: the human data is a pure function of the config and the corpus).
    The grammar's fresh reserve holds the rows this run's generations need, so a saved one may be a prefix
    of it (the study is being extended) or extend it."""
    tokenizer_path = store.tokenizer if store.tokenizer.exists() else None
    load = lambda r: load_human(cfg, lambda n: regimes.fresh_per_generation(cfg.regime, n), tokenizer_path, r)  # noqa: E731
    humans = [load(r) for r in range(cfg.replicates)] if per_replicate(cfg) else [load(0)] * cfg.replicates
    if humans[0].train.shape[1] != cfg.data.seq_len:
        raise ConfigError("data.seq_len", f"human sequences have {humans[0].train.shape[1]} tokens, "
                          f"not {cfg.data.seq_len}")
    for slot, human in _datasets(cfg, humans):
        for split, array in human.splits().items():
            path = store.human(split, slot)
            try:
                saved = load_array(path) if path.exists() else None
            except DataError:
                saved = None
            if split == "fresh" and human.truth is not None and saved is not None:
                n = min(len(saved), len(array))
                saved, array = saved[:n], array[:n]
            if saved is not None and not np.array_equal(saved, array):
                culprit = tokenizer_path or path
                raise DataError(culprit, f"does not match this run: the config now gives different human data "
                                f"than {path.relative_to(store.path)} holds (corpus or tokenizer changed?)")
    return humans


def _save_human(store: RunDir, cfg: Config, humans: list[HumanData], refs: list[score.Reference]) -> None:
    save_json(store.path / "config.json", to_dict(cfg))
    datasets = _datasets(cfg, humans)
    for slot, human in datasets:
        ref = refs[slot or 0]
        # The human train split at the scored positions, as a corpus like the generations' (for the figures).
        arrays = {**human.splits(), "token_counts": score.token_counts(human.train[:, ref.first:], human.vocab_size),
                  "buckets": ref.buckets_V, "reference_counts": ref.counts_V}
        if human.truth is not None:  # the truth's unigram and the train split's exact log-probs, for the figures
            arrays.update(unigram_true=ref.true_V,
                          true_logprob=score.true_logprob(human.truth, human.train, ref.first))
        for name, array in arrays.items():  # missing, unreadable or resized: (re)write; functions of the config
            path = store.human(name, slot)
            try:
                intact = path.exists() and load_array(path).shape == array.shape
            except DataError:
                intact = False
            if not intact:
                save_array(path, array)
    if humans[0].tokenizer is not None and not store.tokenizer.exists():
        humans[0].tokenizer.save(store.tokenizer)
    try:
        rows = load_json(store.human_reference)
        if not isinstance(rows, list) or len(rows) != len(datasets):
            raise DataError(store.human_reference, "not one row per human dataset")
    except DataError:  # one row per human dataset, each with its own subsets
        save_json(store.human_reference, [
            score.human_reference(cfg.metrics, human, refs[slot or 0],
                                  numpy_rng(key_for(cfg.seed, HUMAN_STREAM, slot or 0, Phase.SCORE)))
            for slot, human in datasets])


def _rebuild_run_summaries(store: RunDir, cfg: Config) -> None:
    """Run-level files derived from the finished generations: metrics.jsonl, and the last generation each
    token type was sampled in (from the token counts on disk, so a resumed run gets the same)."""
    store.rebuild_metrics()
    gens = store.finished_generations()
    if gens:
        counts_GRV = np.stack([[load_array(store.rep(j, r) / "token_counts.npy") for r in range(cfg.replicates)]
                               for j in range(gens[-1] + 1)])
        save_array(store.last_seen, tails.last_seen(counts_GRV))


# --------------------------------------------------------------------------------------------- phases


def _save(outputs: list[Path], path: Path, array: np.ndarray) -> None:
    """Write a phase output and record it for the phase marker's digests."""
    save_array(path, array)
    outputs.append(path)


def _train_phase(cfg, store, family, humans, synthetic, g, params0, previous, device, tracker):
    R = cfg.replicates
    params = _done(store, g, "train", lambda: store.load_params(g, family.abstract(R)))
    if params is not None:
        store.drop_train_checkpoints(g)
        return params
    t0 = time.perf_counter()
    sets = [regimes.build(cfg.regime, g, humans[r].train, humans[r].fresh, [s[r] for s in synthetic],
                          numpy_rng(key_for(cfg.seed, g, r, Phase.REGIME))) for r in range(R)]
    outputs = [store.gen(g) / "manifest.json", store.gen(g) / "train_loss.npy", store.checkpoint(g)]
    for r, ts in enumerate(sets):
        _save(outputs, store.rep(g, r) / "train_provenance.npy", ts.provenance)
        _save(outputs, store.rep(g, r) / "train_index.npy", ts.index)
    save_json(store.gen(g) / "manifest.json", {
        "generation": g, "regime": cfg.regime.name,
        "prompt_tokens": prompt_tokens(cfg),  # the first this many tokens of every synthetic row are human
        "replicates": [{"replicate": r, "size": len(ts.tokens), "counts": ts.counts()} for r, ts in enumerate(sets)]})

    if g == 0 or cfg.train.init == "scratch":
        init = family.init(replicate_keys(cfg.seed, g, R, Phase.INIT))
    else:
        init = params0 if cfg.train.init == "gen0" else previous
    rngs = [numpy_rng(key_for(cfg.seed, g, r, Phase.TRAIN)) for r in range(R)]
    data = np.stack([ts.tokens for ts in sets])
    steps = total_steps(data.shape[1], data.shape[2], cfg.train)
    checkpoints = None
    if cfg.train.checkpoint_every > 0:
        checkpoints = store.train_checkpoints(g, cfg.train.checkpoint_every,
                                              abstract_checkpoint(family.abstract(R), cfg.train, steps,
                                                                  family.layout))
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
        params, losses = family.fit(init, data, rngs, cfg.train, on_chunk, checkpoints)
    store.save_params(g, params)
    save_array(store.gen(g) / "train_loss.npy", losses)
    store.mark_done(g, "train", {"seconds": time.perf_counter() - t0, "device": device, "steps": steps,
                                 "sequences": int(data.shape[1])}, outputs)
    store.drop_train_checkpoints(g)
    return params


def _sample_phase(cfg, store, family, humans, g, params, device) -> list[np.ndarray]:
    R, s = cfg.replicates, cfg.sample
    samples = _done(store, g, "sample", lambda: [load_array(store.rep(g, r) / "samples.npy") for r in range(R)])
    if samples is not None:
        return samples
    t0 = time.perf_counter()
    n_train = len(humans[0].train)
    n, P = s.num_sequences or n_train, prompt_tokens(cfg)
    if P:  # continuation: each sequence is a human train prefix followed by the model's continuation
        index = [numpy_rng(key_for(cfg.seed, g, r, Phase.SAMPLE)).choice(n_train, n, replace=n > n_train)
                 for r in range(R)]
        prompts = np.stack([humans[r].train[i, :P] for r, i in enumerate(index)])
    else:
        index, prompts = None, np.zeros((R, n, 0), np.int32)
    with Progress(n, f"gen {g} sample", "seq") as bar:
        new = family.sample(params, prompts, replicate_keys(cfg.seed, g, R, Phase.SAMPLE), s,
                            cfg.data.seq_len - P, on_batch=lambda b: bar.update(min(b, n - bar.done)))
    tokens = np.concatenate([prompts.astype(np.int32), new], axis=2)
    outputs = []
    for r in range(R):
        arrays = {"samples.npy": tokens[r], "provenance.npy": np.full(n, g, np.int32)}
        if index is not None:
            arrays["prompt_index.npy"] = index[r]
        for name, array in arrays.items():
            _save(outputs, store.rep(g, r) / name, array)
    store.mark_done(g, "sample", {"seconds": time.perf_counter() - t0, "device": device}, outputs)
    return list(tokens)


def _score_phase(cfg, store, family, humans, refs, g, params, params0, samples, device) -> list[dict]:
    R = cfg.replicates
    rows = _done(store, g, "score", lambda: store.read_metrics(g, required=True))
    if rows is not None:
        return rows
    t0 = time.perf_counter()
    # Subsets are drawn afresh for every generation and replicate: the rows of a corpus are exchangeable, so
    # fixed sizes (not fixed positions) make generations comparable, and the replicate spread includes them.
    rngs = [numpy_rng(key_for(cfg.seed, g, r, Phase.SCORE)) for r in range(R)]
    values, arrays = score.generation_metrics(cfg.metrics, family, params, params0, humans, refs, samples, rngs)
    outputs = [store.gen(g) / "metrics.jsonl"]
    for r, named in enumerate(arrays):
        for name, array in named.items():
            _save(outputs, store.rep(g, r) / f"{name}.npy", array)
    rows = [{"generation": g, "replicate": r, "metric": name, "value": v, "seed": cfg.seed}
            for r, metrics in enumerate(values) for name, v in metrics.items()]
    store.write_metrics(g, rows)
    store.mark_done(g, "score", {"seconds": time.perf_counter() - t0, "device": device}, outputs)
    return rows
