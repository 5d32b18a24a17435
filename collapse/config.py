"""Typed configuration: the schemas, the one registry of every group's options, and the config as JSON.

Each Hydra config group (`data`, `model`, `train`, `sample`, `regime`, `metrics`, `curate`) is a frozen dataclass, the
single source of every default; groups with several kinds of option (`data=grammar|text|hf`, `regime=replace|...`)
have one subclass per kind, so a key that the chosen option does not have is refused by Hydra before anything
runs. `OPTIONS` names each option once: Hydra's schemas, the option lists of errors and `_option` in config.json
derive from it. Checks: `collapse.validate`; Hydra glue: `collapse.hydra_config`. Nothing here imports JAX.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from collapse.errors import ConfigError, DataError  # noqa: F401  (re-exported for existing imports)

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
    """`model=small`: 3.2 M parameters (with a 256-token vocabulary)."""

    d_model: int = 256
    n_layers: int = 4
    d_ff: int = 1024
    context: int = 256


@dataclass(frozen=True)
class GPT2SmallConfig(TransformerConfig):
    """`model=gpt2_small`: GPT-2 small's shape (124 M parameters with a 50k vocabulary), meant for a GPU."""

    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    d_ff: int = 3072
    context: int = 1024
    dtype: str = "bfloat16"
    scan_layers: bool = True  # one compiled layer for all 12: faster compiles (results/benchmark.md)


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
    # Training targets of generations >= 1 (README "Training targets"; generation 0 always trains on tokens):
    target: str = "tokens"  # tokens (cross-entropy on the data) | soft (distil the teacher) | mixed (both)
    soft_temperature: float = 1.0  # τ: soft loss τ² · KL(teacher_τ ‖ student_τ), p_τ = softmax(logits / τ)
    hard_weight: float = 0.5  # α (target=mixed): α · hard + (1 - α) · soft
    teacher_probs: str = "online"  # online (teacher forward pass in the train step) | topk (stored top-k)
    soft_top_k: int = 32  # k of teacher_probs=topk: log-probabilities kept per position
    distill_on: str = "samples"  # rows that get soft targets: samples (synthetic) | human | both
    teacher: str = "previous"  # previous (generation k-1 teaches k) | gen0 (generation 0 teaches every k)


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
        return option_name(self)


@dataclass(frozen=True)
class ReplaceConfig(RegimeConfig):
    """Only the newest generation's samples."""


@dataclass(frozen=True)
class AccumulateConfig(RegimeConfig):
    """All human data plus all synthetic data so far; the training set grows.

    `human_fraction` h (None: the pools as they are): all samples so far, S sequences, plus the human train
    split repeated to round(h S / (1 - h)) sequences, so that human data is the share h of every training set
    (h = 1: the human train split alone)."""

    human_fraction: float | None = None


@dataclass(frozen=True)
class AccumulateSubsampleConfig(RegimeConfig):
    """Accumulate, but train on a fresh uniform subset of fixed size each generation.

    `human_fraction` h (None: uniform over the whole pool): round(h size) human train sequences and the rest
    uniform over all samples so far."""

    size: int = 0  # sequences (0 = as many as the human train split)
    human_fraction: float | None = None


@dataclass(frozen=True)
class MixConfig(RegimeConfig):
    """A fraction of human data, the rest from the newest generation's samples."""

    human_fraction: float = 0.1
    fresh: bool = False  # False: drawn from the original train split; True: never-seen human data
    size: int = 0  # sequences (0 = as many as the human train split)


# --------------------------------------------------------------------------------------------- curate


@dataclass(frozen=True)
class CurateConfig:
    """What happens to each generation's samples before they join the pools (README "Curation"). The synthetic
    budget stays `sample.num_sequences` (n): a selection draws M = ceil(oversample · n) candidates and keeps n."""

    @property
    def name(self) -> str:
        return option_name(self)


@dataclass(frozen=True)
class NoCurateConfig(CurateConfig):
    """`curate=none`: every sample joins the pools as drawn."""


@dataclass(frozen=True)
class VerifierCurateConfig(CurateConfig):
    """Keep the candidates a verifier scores best (Feng et al.): the exact true log-probability per generated
    token (`scorer=truth`, the grammar) or `package.module:function` (`fn(tokens_NT, prompt_tokens) -> [N]`,
    higher = better), plus Gaussian noise of std `noise` (an imperfect verifier)."""

    oversample: float = 2.0  # candidates drawn per kept sample (per round in select=threshold)
    scorer: str = "truth"  # truth | truth_ratio (data=grammar: log p_true, log p_true - log q_model) | package.module:function
    noise: float = 0.0  # std of the Gaussian noise added to every score
    select: str = "quantile"  # quantile (the n best of M) | threshold (the first n scoring >= threshold)
    threshold: float = -3.5  # select=threshold: the lowest score admitted (truth: nats per token)
    max_rounds: int = 4  # select=threshold: rounds of M candidates at most before giving up


@dataclass(frozen=True)
class PerplexityCurateConfig(CurateConfig):
    """Keep a quantile band of the candidates by their perplexity per generated token under a model
    (Gambetta et al.; Qiao et al.): generation 0's (`model=gen0`) or the generation's own (`current`)."""

    oversample: float = 2.0  # candidates drawn per kept sample
    model: str = "gen0"  # gen0 | current: the judge
    keep: str = "low"  # low (least surprising) | high (most surprising) | band (from band_start)
    band_start: float = 0.25  # keep=band: the kept quantiles are [band_start, band_start + 1 / oversample)


@dataclass(frozen=True)
class DetectorCurateConfig(CurateConfig):
    """Importance resampling by a human-vs-synthetic classifier (Drayson et al. 2025): weights
    (1 - p_synthetic)^bias, each candidate repeated at most `max_repeats` times (`collapse.curation.detector`)."""

    upsample: float = 1.5  # kept samples per candidate drawn (M = ceil(n / upsample); each kept <= max_repeats)
    bias: float = 10.0  # β of the weights (1 - p_synthetic)^β
    max_repeats: int = 3  # times a candidate may be kept at most
    steps: int = 200  # classifier training steps (each detector of the two cross-fits)
    lr: float = 3e-3
    d_embed: int = 64
    holdout: float = 0.2  # share of each class held out to calibrate and test the classifier
    significance: float = 0.01  # used only if it beats chance on the held-out rows at this level (else uniform)


@dataclass(frozen=True)
class CorrectCurateConfig(CurateConfig):
    """Correct every sample toward the truth (Gillman et al.; the grammar only): `unit=token` replaces each
    generated token, with probability `fraction`, by a draw from the truth given the corrected prefix;
    `unit=sequence` replaces each sample's generated tokens, with probability `fraction`, by the truth's
    continuation of its prompt (their γ-ideal corrector: the mixture (1 - fraction) q + fraction p)."""

    fraction: float = 0.5
    unit: str = "token"  # token | sequence


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
    curate: CurateConfig = field(default_factory=NoCurateConfig)
    generations: int = 5  # generation 0 (human data) up to generations - 1
    seed: int = 0
    replicates: int = 1
    out_dir: str = "runs/${now:%Y-%m-%d_%H-%M-%S}"  # CLI only ("auto": runs/<study_id>); the Python API takes a path
    compilation_cache: str = "~/.cache/collapse/jax"  # persistent XLA cache ("" = off)
    cpu_devices: int = 0  # on a CPU: XLA devices to split the host into (0 = one per core, see devices.py)
    tracking: str = "none"  # none | tensorboard | wandb (optional extras; see collapse/tracking.py)
    wandb_project: str = "collapse"
    wandb_mode: str = "offline"  # offline | online
    # `model` options per generation (generation g: entry g, the last repeating; empty: the `model` group for
    # every generation). An entry is its option's sizes; the entry naming the `model` group's option is that
    # group as configured (`model=tiny model.d_model=64 model_schedule=[small,tiny]`). See `generation_model`.
    model_schedule: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Option:
    """An option of a config group: its schema, and `_option: <name>` in config.json. `choice`: selected on the
    command line as `<group>=<name>` (conf/<group>/<name>.yaml); the single schema of `train`, `sample` and
    `metrics` backs options of other names (`sample=continuation`), and `model: transformer` is only read back
    (config.json written before the transformer sizes had names; the Python API's plain TransformerConfig)."""

    group: str
    name: str
    schema: type
    choice: bool = True


GROUPS = ("data", "model", "train", "sample", "regime", "metrics", "curate")

OPTIONS: tuple[Option, ...] = (
    Option("data", "grammar", GrammarConfig),
    Option("data", "text", TextConfig),
    Option("data", "hf", HFConfig),
    Option("model", "transformer", TransformerConfig, choice=False),
    Option("model", "tiny", TinyConfig),
    Option("model", "small", SmallConfig),
    Option("model", "gpt2_small", GPT2SmallConfig),
    # analytic families: the option name is also the module's, collapse.families.<name>
    Option("model", "gaussian", GaussianConfig),
    Option("model", "gmm", GMMConfig),
    Option("model", "categorical", CategoricalConfig),
    Option("model", "linreg", LinRegConfig),
    Option("train", "train", TrainConfig, choice=False),
    Option("sample", "sample", SampleConfig, choice=False),
    Option("regime", "replace", ReplaceConfig),
    Option("regime", "accumulate", AccumulateConfig),
    Option("regime", "accumulate_subsample", AccumulateSubsampleConfig),
    Option("regime", "mix", MixConfig),
    Option("metrics", "metrics", MetricsConfig, choice=False),
    Option("curate", "none", NoCurateConfig),
    Option("curate", "verifier", VerifierCurateConfig),
    Option("curate", "perplexity", PerplexityCurateConfig),
    Option("curate", "detector", DetectorCurateConfig),
    Option("curate", "correct", CorrectCurateConfig),
)

_BY_SCHEMA = {o.schema: o for o in OPTIONS}
_BY_NAME = {(o.group, o.name): o for o in OPTIONS}


def schemas(group: str, base: type = object) -> dict[str, type]:
    """{name: schema} of the options of `group` a user chooses by name whose schema is a `base`, in registry
    order (`schemas("model", AnalyticConfig)`: the analytic families, each implemented by
    collapse.families.<name>)."""
    return {o.name: o.schema for o in OPTIONS if o.group == group and o.choice and issubclass(o.schema, base)}


def choices(group: str, base: type = object) -> tuple[str, ...]:
    """The names of `schemas(group, base)`."""
    return tuple(schemas(group, base))


def option_name(obj: object) -> str:
    """The option name of a group's config object (`_option` in config.json)."""
    return _BY_SCHEMA[type(obj)].name


# Derived views, under the names the rest of the code has used.
GROUP_SCHEMAS: list[tuple[str, str, type]] = [(o.group, o.name, o.schema) for o in OPTIONS]
ANALYTIC_MODELS = choices("model", AnalyticConfig)  # `model` options of the analytic families
TRANSFORMER_MODELS = choices("model", TransformerConfig)  # `model` options of the transformer


# ----------------------------------------------------------------------------------------- JSON form

# Keys that may change between a run and its resumption: they change no number already written.
RESUMABLE_KEYS = ("generations", "out_dir", "compilation_cache", "cpu_devices", "tracking", "wandb_project",
                  "wandb_mode")


# Groups added after run directories existed, and the option that is the study they describe without the
# group: `to_dict` leaves such a group out at that option (config.json, `study_id` and the grouping of
# `collapse-report` stay those of a study written before it), `from_dict` reads a missing one as it.
LATER_GROUPS = {"curate": "none"}


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain JSON-able dict; each group carries its option name under `_option` (`LATER_GROUPS` at their
    default option left out)."""
    out = dataclasses.asdict(cfg)
    for group in GROUPS:
        out[group] = {"_option": option_name(getattr(cfg, group)), **out[group]}
        if out[group] == {"_option": LATER_GROUPS.get(group)}:
            del out[group]
    return out


def from_dict(d: dict[str, Any]) -> Config:
    """Inverse of `to_dict`."""
    d = dict(d)
    for group in GROUPS:
        fields = dict(d[group]) if group in d or group not in LATER_GROUPS else {"_option": LATER_GROUPS[group]}
        d[group] = _BY_NAME[(group, fields.pop("_option"))].schema(**fields)
    return Config(**d)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """A nested dict (e.g. `to_dict` of a config) as {dotted key: value}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def diff_keys(a: dict, b: dict) -> set[str]:
    """The dotted keys whose values differ between two nested dicts (a key one side lacks reads as None)."""
    fa, fb = flatten(a), flatten(b)
    return {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}


def study_id(cfg: Config) -> str:
    """A stable name for the study `cfg` describes: readable prefix + hash of every result-changing value.

    `out_dir=auto` uses it, so a relaunched or requeued job finds its own run directory."""
    import hashlib
    import json

    values = {k: v for k, v in to_dict(cfg).items() if k not in RESUMABLE_KEYS}
    for group in set(GROUPS) & set(values):  # an unset optional key (None) leaves the id of an older study
        values[group] = {k: v for k, v in values[group].items() if v is not None}
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]
    model = values["model"]["_option"]
    source = model if isinstance(cfg.model, AnalyticConfig) else f"{values['data']['_option']}-{model}"
    return f"{source}-{values['regime']['_option']}-seed{cfg.seed}-{digest}"


def schedule_name(cfg: Config, g: int) -> str:
    """The `model` option that trains generation g (`model_schedule`, the last entry repeating)."""
    if not cfg.model_schedule:
        return option_name(cfg.model)
    return cfg.model_schedule[min(g, len(cfg.model_schedule) - 1)]


def generation_model(cfg: Config, g: int) -> ModelConfig:
    """Generation g's model config: the `model` group, or the `model_schedule` entry's option (the `model` group
    itself where the entry names its option, so its overrides apply)."""
    name = schedule_name(cfg, g)
    if name == option_name(cfg.model):
        return cfg.model
    return _BY_NAME[("model", name)].schema()


def prompt_tokens(cfg: Config) -> int:
    """Human prefix tokens at the start of every synthetic sequence (0 in unconditional mode): metrics score
    positions prompt_tokens..T-1 only."""
    return cfg.sample.prompt_len if cfg.sample.mode == "continuation" else 0


# Names that moved to their own modules, still importable from here (loaded on first use: those modules
# import this one).
_MOVED = {"validate": "collapse.validate", "batch_sizes": "collapse.validate", "splits_evenly": "collapse.validate",
          "MAX_TABLE": "collapse.validate", "from_hydra": "collapse.hydra_config",
          "register_configs": "collapse.hydra_config"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
