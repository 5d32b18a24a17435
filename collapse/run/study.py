"""A study's fixed context, built once before the generational loop: the config, the run directory, every
replicate's human data with its references, one model family per scheduled size, and the values every phase
derives from the config (the synthetic budget, the prompt tokens, each generation's model and teacher).

`open_study` checks everything it can before anything is written (the run directory holds this study or
none, the human data matches what the directory holds, the regime's sizes fit the data); `save_human`
then writes config.json and the human data, each file only if it is missing or damaged.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from collapse import devices, regimes, watermark
from collapse.config import (Config, RESUMABLE_KEYS, TRANSFORMER_MODELS, diff_keys, from_dict, generation_model,
                             prompt_tokens, schedule_name, to_dict)
from collapse.data import TokenizedConfig
from collapse.data.human import HumanData, Seat, load_human, per_replicate
from collapse.errors import ConfigError, DataError
from collapse.families import PretrainedConfig
from collapse.families.protocols import ModelFamily
from collapse.data.grammar import true_logprob
from collapse.metrics import score
from collapse.provenance import LAB_CODE
from collapse.rng import HUMAN_STREAM, Phase, key_for, numpy_rng, replicate_keys
from collapse.files import load_array, load_json, save_array, save_json
from collapse.store import RunDir
from collapse.validate import batch_sizes

log = logging.getLogger("collapse")

@dataclass(frozen=True)
class Study:
    cfg: Config
    store: RunDir
    humans: list[HumanData]  # [R]: each replicate's human data (on text one object, shared)
    refs: list[score.Reference]  # [R]: what each replicate's metrics compare with
    families: dict[str, ModelFamily]  # one per `model` option the study trains (`model_schedule`)
    device: str  # "<count> x <kind>", recorded in the phase markers
    loaded: set[tuple[int, str]] = field(default_factory=set)  # (generation, phase) found done and loaded, not run
    lab: int = 0  # its place among the labs of an ecosystem (0: a single-lab study; collapse.rng.lab_key)
    name: str = ""  # the lab's name ("": a single-lab study)
    peers: dict = field(default_factory=dict)  # {lab name: (Study, Lineage)} of an ecosystem, its own too
    crawls: bool = False  # an ecosystem's lab that trains its generations g >= 1 on a crawl of the web

    def key(self, g: int, r: int, phase: Phase):
        """The key of generation g, replicate r, `phase` (collapse.rng: the lab folded in)."""
        return key_for(self.cfg.seed, g, r, phase, self.lab)

    def keys(self, g: int, phase: Phase):
        """The keys `[R]` of every replicate of generation g, `phase`."""
        return replicate_keys(self.cfg.seed, g, self.replicates, phase, self.lab)

    def family(self, g: int) -> ModelFamily:
        """The family of generation g's model (its graph and parameter shapes)."""
        return self.families[self.model_name(g)]

    def model_name(self, g: int) -> str:
        """The `model` option that trains generation g (`model_schedule`)."""
        return schedule_name(self.cfg, g)

    def teacher(self, g: int) -> int:
        """The generation whose model teaches generation g >= 1 (`train.teacher`): g - 1 (previous, or another
        lab's: `lab:<name>`) or 0."""
        return 0 if self.cfg.train.teacher == "gen0" else g - 1

    def teacher_peer(self):
        """The (Study, Lineage) of the lab whose model teaches this one (`train.teacher=lab:<name>`), else None."""
        name = self.cfg.train.teacher.partition("lab:")[2]
        return self.peers[name] if name else None

    @property
    def labs(self) -> list[str] | None:
        """The names of an ecosystem's labs, in order (None: a single-lab study)."""
        return list(self.peers) or None

    def origin_study(self, code: int) -> Study:
        """The study whose samples an origin code names (`provenance.origins`): a peer's in an ecosystem (human
        data, code -1, is this study's)."""
        return self.peers[self.labs[code // LAB_CODE]][0] if self.labs and code >= 0 else self

    @property
    def layout(self) -> devices.Layout:
        return self.family(0).layout

    @property
    def replicates(self) -> int:
        return self.cfg.replicates

    @property
    def generations(self) -> int:
        return self.cfg.generations

    @property
    def n_train(self) -> int:
        return len(self.humans[0].train)

    @property
    def n(self) -> int:
        """The synthetic budget: sequences each generation adds to the pools (`sample.num_sequences`, 0: the
        human train size)."""
        return self.cfg.sample.num_sequences or self.n_train

    @property
    def P(self) -> int:
        """Human prompt tokens at the start of every synthetic sequence (0 unconditionally): the metrics score
        positions P..T-1."""
        return prompt_tokens(self.cfg)

    def datasets(self) -> list[tuple[int | None, HumanData]]:
        """(slot in `human/`, data) per distinct human dataset: every replicate's own on the grammar, else the
        one the replicates share (slot None: `human/` itself)."""
        return list(enumerate(self.humans)) if per_replicate(self.cfg.data) else [(None, self.humans[0])]


def check_same_study(store: RunDir, cfg: Config) -> None:
    """Refuse a run directory that holds a different study (keys that change no number may differ)."""
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
    differ = sorted(diff_keys(old, new) - set(RESUMABLE_KEYS))
    if differ:
        raise ConfigError(differ[0], f"{store.path} holds a different study (changed: {', '.join(differ)}); "
                          "resume it with its own config or choose a new out_dir")
    if old["generations"] > cfg.generations:
        log.info("%s has %d generations configured; running %d", store.path, old["generations"], cfg.generations)


def open_study(cfg: Config, store: RunDir, seat: Seat | None = None, name: str = "") -> Study:
    """Load and check the human data, the regime's sizes and the device layout; write nothing. A lab of an
    ecosystem (`seat`, `name`): its share of the human data and its keys (collapse.rng.lab_key)."""
    humans = load_humans(cfg, store, seat)
    if isinstance(cfg.model, PretrainedConfig):  # its tokenizer's ids are tokens of the checkpoint's vocabulary
        if humans[0].vocab_size > cfg.model.vocab:
            raise DataError(Path(cfg.model.path), f"its tokenizer has {humans[0].vocab_size} tokens, its model "
                            f"{cfg.model.vocab}")
        humans = [dataclasses.replace(h, vocab_size=cfg.model.vocab) for h in humans]  # what a model may emit
    n_train = len(humans[0].train)
    if seat and not n_train:
        raise ConfigError("human.shared_fraction", f"lab {name} gets no human train rows (none shared, and its "
                          f"segment of the rest is empty): raise human.shared_fraction or data.n_train")
    regimes.check_sizes(cfg.regime, cfg.generations, n_train, cfg.sample.num_sequences or n_train,
                        cfg.train.batch_size)
    withheld = cfg.sample.withheld
    if withheld and prompt_tokens(cfg) and (cfg.sample.num_sequences or n_train) + withheld > n_train:
        raise ConfigError("sample.withheld", f"continuation mode: the withheld rows continue human prompts the corpus "
                          f"does not, so corpus and withheld rows together ({cfg.sample.num_sequences or n_train} + "
                          f"{withheld}) must fit the {n_train} human train rows: lower sample.num_sequences or "
                          "sample.withheld")
    if isinstance(cfg.data, TokenizedConfig):  # the grammar draws as many fresh rows as the study needs
        regimes.check_fresh(cfg.regime, cfg.generations, n_train, len(humans[0].fresh), cfg.data.fresh_fraction)
    layout = devices.make_layout(cfg.replicates, batch_sizes(cfg))
    refs = {id(h): score.reference(h, cfg.metrics, prompt_tokens(cfg)) for h in humans}
    families: dict[str, ModelFamily] = {}
    for g in range(max(len(cfg.model_schedule), 1)):  # the last entry repeats
        if schedule_name(cfg, g) not in families:
            families[schedule_name(cfg, g)] = generation_model(cfg, g).family(humans[0].vocab_size, layout)
    t, vocab_size = cfg.train, humans[0].vocab_size
    if t.target != "tokens" and t.teacher_probs == "topk" and t.soft_top_k > vocab_size:
        raise ConfigError("train.soft_top_k", f"must be <= the vocabulary ({vocab_size} tokens, "
                          f"as the tokenizer learned it), got {t.soft_top_k}")
    device = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
    return Study(cfg, store, humans, [refs[id(h)] for h in humans], families, device,
                 lab=seat.index if seat else 0, name=name)


def load_humans(cfg: Config, store: RunDir, seat: Seat | None = None) -> list[HumanData]:
    """Every replicate's human data (a lab's share of it, `seat`); on resume it must equal what the run directory
    holds (an unreadable copy there is rewritten by `save_human`: the human data is a pure function of the
    config and the corpus). The grammar's fresh reserve holds the rows this run's generations need, so a saved
    one may be a prefix of it (the study is being extended) or extend it."""
    tokenizer_path = store.tokenizer if store.tokenizer.exists() else None
    own = (lambda n: len(seat.rows(n))) if seat else (lambda n: n)  # noqa: E731  (the train rows the regime sees)

    def load(r: int) -> HumanData:
        human = load_human(cfg.data, cfg.seed, cfg.generations, lambda n: cfg.regime.fresh_per_generation(own(n)),
                           tokenizer_path, r, seat.index if seat else 0)
        return seat.segment(human) if seat else human

    humans = [load(r) for r in range(cfg.replicates)] if per_replicate(cfg.data) else [load(0)] * cfg.replicates
    if humans[0].train.shape[1] != cfg.data.seq_len:
        raise ConfigError("data.seq_len", f"human sequences have {humans[0].train.shape[1]} tokens, "
                          f"not {cfg.data.seq_len}")
    slots = range(cfg.replicates) if per_replicate(cfg.data) else [None]
    for slot, human in zip(slots, humans):
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


def save_human(study: Study) -> None:
    """config.json, the human data, its references and the human metric rows (`human/reference.json`)."""
    cfg, store = study.cfg, study.store
    resumed = (store.path / "config.json").exists()  # then a missing or damaged file is a repair worth a word
    save_json(store.path / "config.json", to_dict(cfg))
    datasets = study.datasets()
    for slot, human in datasets:
        ref = study.refs[slot or 0]
        # The human train split at the scored positions, as a corpus like the generations' (for the figures).
        arrays = {**human.splits(), "token_counts": score.token_counts(human.train[:, ref.first:], human.vocab_size),
                  "buckets": ref.buckets_V, "reference_counts": ref.counts_V}
        if human.truth is not None:  # the truth's unigram and the train split's exact log-probs, for the figures
            arrays.update(unigram_true=ref.true_V,
                          true_logprob=true_logprob(human.truth, human.train, ref.first))
        for name, array in arrays.items():  # missing, unreadable or resized: (re)write; functions of the config
            path = store.human(name, slot)
            try:
                intact = path.exists() and load_array(path).shape == array.shape
            except DataError:
                intact = False
            if not intact:
                if resumed:
                    log.warning("%s: missing or damaged; rewritten from the config (the human data is a function "
                                "of it)", path)
                save_array(path, array)
    if study.humans[0].tokenizer is not None and not store.tokenizer.exists():
        study.humans[0].tokenizer.save(store.tokenizer)
    try:
        rows = load_json(store.human_reference)
        if not isinstance(rows, list) or len(rows) != len(datasets):
            raise DataError(store.human_reference, "not one row per human dataset")
    except DataError:  # one row per human dataset, each with its own subsets
        if resumed:
            log.warning("%s: missing or damaged; recomputed", store.human_reference)
        rows = [score.human_reference(cfg.metrics, human, study.refs[slot or 0],
                                      numpy_rng(key_for(cfg.seed, HUMAN_STREAM, slot or 0, Phase.SCORE)))
                for slot, human in datasets]
        if cfg.sample.watermark != "none":  # the null: text the key never wrote
            for row, (_, human) in zip(rows, datasets):
                row.update(watermark.evidence(watermark.of(cfg.sample), human.train, human.vocab_size, study.P))
        save_json(store.human_reference, rows)
