"""Metrics of a generation, pure functions of arrays: `perplexity`, `diversity`, `tails`, `semantic`; `score`
applies them to a generation (which metric on what); `families` groups them as their modules declare (importing
`score` declares every built-in family; curation's is declared by `collapse.curation.base`)."""

from dataclasses import dataclass

from collapse.checks import check, fraction, positive
from collapse.options import Registered


@dataclass(frozen=True)
class MetricsConfig(Registered, group="metrics", option="metrics", choice=False):
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

    def validate(self) -> None:
        positive(self, "metrics", "ngram_sample", "rep_n", "unigram_alpha")
        check(self.self_bleu_subset >= 2, "metrics.self_bleu_subset", f"must be >= 2, got {self.self_bleu_subset}")
        check(self.semantic_subset >= 2, "metrics.semantic_subset", f"must be >= 2, got {self.semantic_subset}")
        fraction(self.head_mass, "metrics.head_mass", closed_low=False, closed_high=False)
        fraction(self.tail_mass, "metrics.tail_mass", closed_low=False, closed_high=False)
        check(self.head_mass + self.tail_mass <= 1, "metrics.tail_mass",
              f"head_mass + tail_mass must not exceed 1, got {self.head_mass} + {self.tail_mass}")
