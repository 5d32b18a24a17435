"""Model families: the `model` group's options, their schemas and validation (here, without JAX, so a bad value is
refused before any import of it), and their computation in one module each, found by name: the transformer in
`collapse.families.transformer` (its named sizes tiny, small, gpt2_small, whose values live in
conf/model/<option>.yaml), an analytic family `<name>` in `collapse.families.<name>`. Contracts:
`collapse.families.protocols`.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

from collapse.checks import check, fraction, non_negative, one_of, positive
from collapse.options import Registered

# Largest n-gram probability table (contexts × vocabulary) per replicate of the categorical family.
MAX_TABLE = 2**24


@dataclass(frozen=True)
class ModelConfig(Registered, group="model"):
    """A model family."""

    implementation: ClassVar[str]  # "module:name" of what computes it, imported when a study runs

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad key."""

    def family(self, *args: Any) -> Any:
        """The object (or module) that computes this family: `implementation`, imported now."""
        module, _, name = self.implementation.partition(":")
        found = importlib.import_module(module)
        return getattr(found, name)(self, *args) if name else found


@dataclass(frozen=True)
class TransformerConfig(ModelConfig, option="transformer", choice=False):
    """Decoder-only pre-norm transformer (`collapse.model`). As an option, `transformer` is only read back
    (config.json written before the sizes had names; the Python API's plain TransformerConfig)."""

    implementation: ClassVar[str] = "collapse.families.transformer:TransformerFamily"

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512
    context: int = 128  # maximum positions
    dtype: str = "float32"  # compute dtype: float32 | bfloat16 (parameters stay float32)
    scan_layers: bool = False  # run the layers with lax.scan: one compiled layer, faster compiles for deep models
    activation: str = "gelu"  # the MLP's: gelu (tanh form, GPT-2's gelu_new) | relu (OPT)
    tied_head: bool = False  # the output head is the input embedding, transposed (GPT-2, OPT)
    bos_token: int = -1  # -1: BOS is an extra id V, read and never predicted; >= 0 an in-vocabulary token's id
    position_offset: int = 0  # position p reads row p + offset of the position table (OPT: 2)
    LATER: ClassVar[dict[str, Any]] = {"activation": "gelu", "tied_head": False, "bos_token": -1,
                                       "position_offset": 0}  # left out of config.json at default

    def validate(self) -> None:
        positive(self, "model", "d_model", "n_layers", "n_heads", "d_ff", "context")
        non_negative(self, "model", "position_offset")
        check(self.d_model % self.n_heads == 0, "model.n_heads",
              f"must divide model.d_model ({self.d_model}), got {self.n_heads}")
        one_of(self.dtype, "model.dtype", ("float32", "bfloat16"))
        one_of(self.activation, "model.activation", ("gelu", "relu"))
        check(self.bos_token >= -1, "model.bos_token", f"is -1 (an extra id) or a token id, got {self.bos_token}")

    def architecture(self) -> dict:
        """What fixes a model's parameters (the compute dtype does not)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "dtype"}


# The named sizes, one class each so that config.json records the `model` option chosen (`_option: small`) and
# reports and `study_id` tell the sizes apart; their sizes live in conf/model/<option>.yaml.
@dataclass(frozen=True)
class TinyConfig(TransformerConfig, option="tiny"):
    """`model=tiny`: the defaults of TransformerConfig."""


@dataclass(frozen=True)
class SmallConfig(TransformerConfig, option="small"):
    """`model=small`: 3.2 M parameters (with a 256-token vocabulary)."""

    d_model: int = 256
    n_layers: int = 4
    d_ff: int = 1024
    context: int = 256


@dataclass(frozen=True)
class GPT2SmallConfig(TransformerConfig, option="gpt2_small"):
    """`model=gpt2_small`: GPT-2 small's shape (124 M parameters with a 50k vocabulary), meant for a GPU."""

    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    d_ff: int = 3072
    context: int = 1024
    dtype: str = "bfloat16"
    scan_layers: bool = True  # one compiled layer for all 12: faster compiles (results/benchmark.md)


@dataclass(frozen=True)
class PretrainedConfig(TransformerConfig, option="pretrained"):
    """`model=pretrained model.path=DIR`: a Hugging Face GPT-2 or OPT folder (config.json, model.safetensors, its
    tokenizer). Its sizes, vocabulary and digest are read from the folder when the config is composed
    (`collapse.pretrained.resolve`), so config.json and the study id name the checkpoint; the data is tokenized by
    its tokenizer."""

    implementation: ClassVar[str] = "collapse.families.transformer:TransformerFamily"

    path: str = ""  # the folder
    vocab: int = 0  # its config.json's vocab_size (set by resolve)
    sha256: str = ""  # its config.json's and model.safetensors' digest (set by resolve; a folder that differs is refused)

    def validate(self) -> None:
        check(bool(self.path), "model.path", "names a Hugging Face model folder (config.json, model.safetensors and "
              "the tokenizer)")
        check(self.vocab > 0 and bool(self.sha256), "model.path", f"{self.path} was not read (collapse.pretrained."
              "resolve reads it when the config is composed)")
        super().validate()

    def family(self, vocab_size: int, *args: Any) -> Any:
        """The transformer of the checkpoint's vocabulary (the data's tokens are a part of it)."""
        return super().family(self.vocab, *args)


@dataclass(frozen=True)
class AnalyticConfig(ModelConfig):
    """A small model with closed-form behaviour, implemented by the module `collapse.families.<option>`: it holds
    its own ground truth, and the `data`, `train`, `sample` and `metrics` groups do not apply. Generation 0
    fits `samples` points drawn from the truth; every generation samples `samples` points from its fit (the
    regimes' human and synthetic sizes)."""

    samples: int = 100  # M: points per generation (human train size = synthetic corpus size)

    def validate(self) -> None:
        positive(self, "model", "samples")

    @property
    def implementation(self) -> str:  # the module collapse.families.<option>, a `protocols.AnalyticFamily`
        return f"collapse.families.{self.name}"


@dataclass(frozen=True)
class GaussianConfig(AnalyticConfig, option="gaussian"):
    """d-dimensional Gaussian refitted by maximum likelihood or unbiasedly; truth N(0, std² I)."""

    dim: int = 1
    std: float = 1.0  # true standard deviation per coordinate
    estimator: str = "mle"  # mle (divide by n) | unbiased (divide by n - 1)
    bias: float = 1.0  # λ: generation k samples from N(μ_k, λ Σ_k) (Alemohammad et al.; 1 = unbiased sampling)

    def validate(self) -> None:
        positive(self, "model", "samples", "dim", "std", "bias")
        one_of(self.estimator, "model.estimator", ("mle", "unbiased"))
        check(self.samples > self.dim, "model.samples", f"must exceed model.dim ({self.dim}) for a full-rank "
              f"covariance, got {self.samples}")


@dataclass(frozen=True)
class GMMConfig(AnalyticConfig, option="gmm"):
    """K-component Gaussian mixture fitted by EM (warm-started from the previous generation's fit).

    Truth: equal weights, unit covariances, means `separation` apart along the first axis."""

    samples: int = 1000
    components: int = 2
    dim: int = 2
    separation: float = 4.0
    em_steps: int = 20  # EM iterations per generation
    reg_covar: float = 1e-6  # added to every covariance's diagonal (as scikit-learn does)

    def validate(self) -> None:
        positive(self, "model", "samples", "dim", "components", "em_steps")
        non_negative(self, "model", "separation", "reg_covar")
        check(self.samples >= self.components, "model.samples",
              f"must be >= model.components ({self.components}), got {self.samples}")


@dataclass(frozen=True)
class CategoricalConfig(AnalyticConfig, option="categorical"):
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

    def validate(self) -> None:
        positive(self, "model", "samples", "order", "seq_len")
        non_negative(self, "model", "zipf_exponent", "truth_seed", "temperature", "top_k")
        check(self.vocab_size >= 2, "model.vocab_size", f"must be >= 2, got {self.vocab_size}")
        check(self.top_k <= self.vocab_size, "model.top_k",
              f"must be <= model.vocab_size ({self.vocab_size}), got {self.top_k}")
        fraction(self.top_p, "model.top_p", closed_low=False)
        table = (self.vocab_size + 1) ** (self.order - 1) * self.vocab_size
        check(table <= MAX_TABLE, "model.order", f"a table of (vocab_size + 1)^(order - 1) × vocab_size = {table} "
              f"probabilities exceeds {MAX_TABLE}; lower model.order or model.vocab_size")


@dataclass(frozen=True)
class LinRegConfig(AnalyticConfig, option="linreg"):
    """Linear regression y = x·w* + N(0, noise); OLS refitted on labels produced by the previous fit plus fresh
    noise, at the replicate's fixed design X (`samples` × `dim`, standard normal entries)."""

    dim: int = 10
    noise: float = 1.0  # σ²: label-noise variance
    truth_seed: int = 0  # w* ~ N(0, I / dim)

    def validate(self) -> None:
        positive(self, "model", "samples", "dim")
        non_negative(self, "model", "noise", "truth_seed")
        check(self.samples > self.dim + 1, "model.samples", f"must exceed model.dim + 1 = {self.dim + 1} (OLS on a "
              f"samples × dim design; E‖ŵ - w*‖² is finite only then), got {self.samples}")
