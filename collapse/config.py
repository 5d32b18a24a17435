"""Typed configuration: a study's schema (`Config`), the single-schema groups `train` and `sample` (`metrics`'s
lives in collapse.metrics), the registry of every group's options and the config as JSON.

Each Hydra config group is a frozen dataclass, the single source of every default; groups with several kinds
of option have one subclass per option, registered beside its code (`collapse.options`): `data` in
collapse/data, `model` in collapse/families, `regime` in collapse/regimes, `curate` in collapse/curation, so a key
that the chosen option does not have is refused by Hydra before anything runs. `OPTIONS` lists them: Hydra's
schemas, the option lists of errors and `_option` in config.json derive from it. Checks: `collapse.validate`;
Hydra glue: `collapse.hydra_config`. Nothing here imports JAX.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from collapse.checks import check, fraction, non_negative, one_of, positive
from collapse.curation import CurateConfig, NoCurateConfig
from collapse.data import DataConfig, GrammarConfig
from collapse.families import AnalyticConfig, ModelConfig, TinyConfig, TransformerConfig
from collapse.labs import HumanConfig, LabConfig, WebConfig
from collapse.metrics import MetricsConfig
from collapse.options import Option, Registered, flatten, lookup, option_name, registered
from collapse.regimes import RegimeConfig, ReplaceConfig

# ------------------------------------------------------------------------------------- train / sample / metrics


@dataclass(frozen=True)
class TrainConfig(Registered, group="train", option="train", choice=False):
    """AdamW with linear warmup and cosine decay, global-norm clipping, per generation."""

    batch_size: int = 64
    epochs: float = 4.0  # passes over the generation's training set ...
    tokens: int = 0  # ... unless a token budget per generation is set (> 0)
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio
    warmup_fraction: float = 0.05
    warmup_steps: int = 0  # > 0: warm up over this many steps instead (a fine-tuning recipe's), each generation
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.95
    grad_clip: float = 1.0
    init: str = "scratch"  # scratch | gen0 | previous | pretrained: where generation k >= 1 starts
    log_every: int = 50  # steps per compiled chunk; losses reach the host once per chunk
    checkpoint_every: int = 0  # also checkpoint inside a generation every this many steps (0 = off)
    # Training targets of generations >= 1 (docs/training-targets.md; generation 0 always trains on tokens):
    target: str = "tokens"  # tokens (cross-entropy on the data) | soft (distil the teacher) | mixed (both)
    soft_temperature: float = 1.0  # τ: soft loss τ² · KL(teacher_τ ‖ student_τ), p_τ = softmax(logits / τ)
    hard_weight: float = 0.5  # α (target=mixed): α · hard + (1 - α) · soft
    teacher_probs: str = "online"  # online (teacher forward pass in the train step) | topk (stored top-k)
    soft_top_k: int = 32  # k of teacher_probs=topk: log-probabilities kept per position
    distill_on: str = "samples"  # rows that get soft targets: samples (synthetic) | human | both
    teacher: str = "previous"  # previous (generation k-1 teaches k) | gen0 (generation 0 teaches every k)
    LATER: ClassVar[dict[str, Any]] = {"warmup_steps": 0}  # left out of config.json at default

    def validate(self) -> None:
        positive(self, "train", "batch_size", "lr", "log_every")
        non_negative(self, "train", "epochs", "tokens", "weight_decay", "grad_clip", "checkpoint_every",
                     "warmup_steps")
        check(self.epochs > 0 or self.tokens > 0, "train.epochs",
              "set train.epochs > 0 or a token budget train.tokens > 0")
        fraction(self.min_lr_ratio, "train.min_lr_ratio")
        fraction(self.warmup_fraction, "train.warmup_fraction", closed_high=False)
        fraction(self.b1, "train.b1", closed_high=False)
        fraction(self.b2, "train.b2", closed_high=False)
        one_of(self.init, "train.init", ("scratch", "gen0", "previous", "pretrained"))
        one_of(self.target, "train.target", ("tokens", "soft", "mixed"))
        positive(self, "train", "soft_temperature", "soft_top_k")
        fraction(self.hard_weight, "train.hard_weight")
        one_of(self.teacher_probs, "train.teacher_probs", ("online", "topk"))
        one_of(self.distill_on, "train.distill_on", ("samples", "human", "both"))
        if not self.teacher.startswith("lab:"):  # lab:<name> in a study of several labs (collapse.labs)
            one_of(self.teacher, "train.teacher", ("previous", "gen0", "lab:<name>"))


@dataclass(frozen=True)
class SampleConfig(Registered, group="sample", option="sample", choice=False):
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
    watermark: str = "none"  # none | green_list | gumbel (collapse/watermark.py)
    watermark_key: int = 0  # the watermark's secret: fixed across generations and seeds (a lab's, not a run's)
    watermark_context: int = 2  # tokens before the next one that seed its green list or r
    watermark_gamma: float = 0.25  # green_list: the green share of the vocabulary
    watermark_delta: float = 2.0  # green_list: added to green tokens' logits
    watermark_generations: int = 0  # generations 0..G-1 watermark their samples (0: all); later ones sample plainly
    withheld: int = 0  # sequences drawn besides the corpus and never released: the membership test's control
    repetition_penalty: float = 1.0  # Hugging Face's: a seen token's logit / p if positive, * p if negative (1: off)
    LATER: ClassVar[dict[str, Any]] = {}  # the keys added after run directories existed, at their defaults

    def at(self, g: int) -> SampleConfig:
        """How generation g samples: without the watermark from generation `watermark_generations` on (its
        watermark_* rows then measure what its model inherited from watermarked ancestors)."""
        if self.watermark == "none" or not self.watermark_generations or g < self.watermark_generations:
            return self
        return dataclasses.replace(self, watermark="none")

    def validate(self) -> None:
        one_of(self.mode, "sample.mode", ("unconditional", "continuation"))
        positive(self, "sample", "candidates", "batch_size")
        non_negative(self, "sample", "num_sequences", "temperature", "top_k", "beam_size", "withheld")
        fraction(self.top_p, "sample.top_p", closed_low=False)
        positive(self, "sample", "repetition_penalty")
        check(self.top_k <= self.candidates, "sample.top_k",
              f"must be <= sample.candidates ({self.candidates}), got {self.top_k}")
        if self.mode == "continuation":
            positive(self, "sample", "prompt_len")


SampleConfig.LATER = {f.name: f.default for f in dataclasses.fields(SampleConfig)
                      if f.name.startswith("watermark") or f.name in ("withheld", "repetition_penalty")}


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
    # Several labs (docs/ecosystems.md; empty: the single-lab study), how they share the human data, the web.
    labs: list[LabConfig] = field(default_factory=list)
    human: HumanConfig = field(default_factory=HumanConfig)
    web: WebConfig = field(default_factory=WebConfig)


# ------------------------------------------------------------------------------------------- registry

GROUPS = ("data", "model", "train", "sample", "regime", "metrics", "curate")

OPTIONS: tuple[Option, ...] = registered()  # every built-in option (a test may register more: `options`)


def schemas(group: str, base: type = object) -> dict[str, type]:
    """{name: schema} of the options of `group` a user chooses by name whose schema is a `base`, in registry
    order (`schemas("model", AnalyticConfig)`: the analytic families, each implemented by
    collapse.families.<name>)."""
    return {o.name: o.schema for o in registered() if o.group == group and o.choice and issubclass(o.schema, base)}


def choices(group: str, base: type = object) -> tuple[str, ...]:
    """The names of `schemas(group, base)`."""
    return tuple(schemas(group, base))


ANALYTIC_MODELS = choices("model", AnalyticConfig)  # `model` options of the analytic families
TRANSFORMER_MODELS = choices("model", TransformerConfig)  # `model` options of the transformer


# ----------------------------------------------------------------------------------------- JSON form

# Keys that may change between a run and its resumption: they change no number already written.
RESUMABLE_KEYS = ("generations", "out_dir", "compilation_cache", "cpu_devices", "tracking", "wandb_project",
                  "wandb_mode", "model.path", "data.tokenizer_path")  # (a checkpoint's folder: model.sha256 pins it)


# Groups added after run directories existed, and the option that is the study they describe without the
# group: `to_dict` leaves such a group out at that option (config.json, `study_id` and the grouping of
# `collapse-report` stay those of a study written before it), `from_dict` reads a missing one as it.
LATER_GROUPS = {"curate": "none"}
# Keys added later, likewise left out at their defaults: the ecosystem's (a single-lab study is as before).
LATER_KEYS = {"labs": [], "human": dataclasses.asdict(HumanConfig()), "web": dataclasses.asdict(WebConfig())}


def to_dict(cfg: Config, every_key: bool = False) -> dict[str, Any]:
    """Plain JSON-able dict; each group carries its option name under `_option` (`LATER_GROUPS` at their
    default option, `LATER_KEYS` and an option's own `LATER` keys at their defaults left out, so a study
    written before they existed keeps its config.json and study id; `every_key`: none left out)."""
    out = dataclasses.asdict(cfg)
    for group in GROUPS:
        out[group] = {"_option": option_name(getattr(cfg, group)), **out[group]}
        if every_key:
            continue
        for key, default in getattr(getattr(cfg, group), "LATER", {}).items():  # an option's later keys
            if out[group][key] == default:
                del out[group][key]
        if out[group] == {"_option": LATER_GROUPS.get(group)}:
            del out[group]
    for key, default in LATER_KEYS.items():
        if out[key] == default and not every_key:
            del out[key]
    return out


def from_dict(d: dict[str, Any]) -> Config:
    """Inverse of `to_dict`."""
    d = dict(d)
    for group in GROUPS:
        fields = dict(d[group]) if group in d or group not in LATER_GROUPS else {"_option": LATER_GROUPS[group]}
        name = fields.pop("_option")
        option = lookup(group, name)
        if option is None:
            raise KeyError(f"{group}={name} is not an option")
        d[group] = option.schema(**fields)
    d["labs"] = [LabConfig(**lab) for lab in d.get("labs", [])]
    d["human"], d["web"] = HumanConfig(**d.get("human", {})), WebConfig(**d.get("web", {}))
    return Config(**d)


def lab_configs(cfg: Config) -> list[Config]:
    """Each lab's own config (`collapse.labs.resolve`: the study's, with the lab's `set`, without labs), in the
    order of `labs`; [cfg] for a single-lab study."""
    from collapse.labs import resolve

    if not cfg.labs:
        return [cfg]
    d = to_dict(cfg)
    return [from_dict(resolve(d, lab, f"labs[{i}]")) for i, lab in enumerate(cfg.labs)]


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
    for group, key in (k.split(".") for k in RESUMABLE_KEYS if "." in k):
        values.get(group, {}).pop(key, None)
    for group in set(GROUPS) & set(values):  # an unset optional key (None) leaves the id of an older study
        values[group] = {k: v for k, v in values[group].items() if v is not None}
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]
    model = values["model"]["_option"]
    source = model if isinstance(cfg.model, AnalyticConfig) else f"{values['data']['_option']}-{model}"
    return f"{source}-{values['regime']['_option']}-seed{cfg.seed}-{digest}"


def schedule_name(cfg: Config, g: int) -> str:
    """The `model` option that trains generation g (`model_schedule`, the last entry repeating)."""
    return cfg.model_schedule[min(g, len(cfg.model_schedule) - 1)] if cfg.model_schedule else option_name(cfg.model)


def generation_model(cfg: Config, g: int) -> ModelConfig:
    """Generation g's model config: the `model` group, or the `model_schedule` entry's option (the `model` group
    itself where the entry names its option, so its overrides apply)."""
    name = schedule_name(cfg, g)
    if name == option_name(cfg.model):
        return cfg.model
    return lookup("model", name).schema()


def prompt_tokens(cfg: Config) -> int:
    """Human prefix tokens at the start of every synthetic sequence (0 in unconditional mode): metrics score
    positions prompt_tokens..T-1 only."""
    return cfg.sample.prompt_len if cfg.sample.mode == "continuation" else 0
