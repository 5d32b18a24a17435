"""What the audits (`collapse-audit`, collapse/audit.py) read of run directories: a run's config and vocabulary,
its finished generations, samples and models, a lab's place among its ecosystem's labs, and whether a suspect
draws from a source's keys.
"""

from __future__ import annotations

import numpy as np

from collapse.certificate import lab_names
from collapse.config import Config, from_dict, generation_model
from collapse.errors import DataError
from collapse.files import load_array, load_json
from collapse.store import RunDir


def study(path: str) -> tuple[RunDir, Config]:
    """A run directory and its config; an ecosystem's root is refused (its labs are audited one by one)."""
    store = RunDir(path)
    try:
        cfg = from_dict(load_json(store.path / "config.json"))
    except (KeyError, TypeError) as e:
        raise DataError(store.path / "config.json", f"not a collapse config ({e})") from None
    if cfg.labs:
        raise DataError(store.path, "an ecosystem: audit one lab's directory, labs/<name>")
    return store, cfg


def vocab(cfg: Config, store: RunDir) -> int:
    """The model's vocabulary: a pretrained checkpoint's, the run's tokenizer where it has one, else the grammar's
    size."""
    if getattr(cfg.model, "vocab", 0):
        return cfg.model.vocab
    if store.tokenizer.exists():
        from collapse.data.tokenizer import load_tokenizer

        return load_tokenizer(store.tokenizer).vocab_size
    return cfg.data.vocab_bound()


def generations(store: RunDir, asked: list[int] | None, phase: str = "sample") -> list[int]:
    """The generations asked for (default: every one) whose `phase` is done; one that is not is refused."""
    done = [g for g in store.generations() if store.is_done(g, phase)]
    for g in asked or []:
        if g not in done:
            raise DataError(store.gen(g), f"generation {g} has not finished its {phase} phase")
    return asked or done


def samples(store: RunDir, cfg: Config, g: int) -> list[np.ndarray]:
    """Generation g's corpus of every replicate."""
    return [load_array(store.array(g, r, "samples")) for r in range(cfg.replicates)]


def models(store: RunDir, cfg: Config, asked: list[int] | None, V: int):
    """(generation, family, params `[R, ...]`) of each generation asked for (default: every trained one), whose
    models must read the source's V tokens."""
    from collapse import devices
    from collapse.validate import batch_sizes

    if vocab(cfg, store) != V:
        raise DataError(store.path, f"its models read {vocab(cfg, store)} tokens, the source run's text {V}")
    layout = devices.make_layout(cfg.replicates, batch_sizes(cfg))
    for g in generations(store, asked, "train"):
        family = generation_model(cfg, g).family(V, layout)
        yield g, family, store.load_params(g, family.abstract(cfg.replicates))


def per_replicate(cfg: Config, source_RN: np.ndarray) -> np.ndarray:
    """The source's rows as the suspect's replicates read them: replicate r reads the source's r (mod theirs)."""
    return source_RN[np.arange(cfg.replicates) % len(source_RN)]


def apart(store: RunDir, cfg: Config, source: RunDir, source_cfg: Config) -> None:
    """Refuse a run of another directory that draws from the source's keys (same seed and lab): its samples and
    training order are drawn with the source's, so the membership tests' nulls do not hold for it."""
    if store.path.resolve() != source.path.resolve() and (cfg.seed, lab_index(store)) == (source_cfg.seed,
                                                                                          lab_index(source)):
        raise DataError(store.path, f"draws from the keys of {source.path} (seed {cfg.seed}): its samples and "
                        "training order are that run's, so the test's null does not hold; use a run of another seed")


def origin_of(store: RunDir, source: RunDir, j: int) -> str | None:
    """The name `store`'s provenance gives generation j of `source` (collapse.certificate's origins): "gen_<j>" in
    the same run, "<lab>/gen_<j>" from a lab of the same ecosystem; None where it cannot name it (another run)."""
    if lab_names(store) is not None and source.path.parent.resolve() == store.path.parent.resolve():
        return f"{source.path.name}/gen_{j}"
    return f"gen_{j}" if source.path.resolve() == store.path.resolve() else None


def lab_index(store: RunDir) -> int:
    """The place of a lab's directory among its ecosystem's labs (its keys'); 0 for a single-lab study."""
    names = lab_names(store)
    if names is not None and store.path.name not in names:
        raise DataError(store.path.parent.parent / "config.json", f"names no lab {store.path.name!r}")
    return 0 if names is None else names.index(store.path.name)
