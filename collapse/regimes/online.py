"""`regime=online`: online self-training (Herel & Mikolov 2024, their code DavidHerel/collapse-lm-iclr).

From generation 1 on there is no corpus to build: the model trains on what it samples as it trains. One update
samples one sequence of data.seq_len tokens from BOS (sample.temperature, top_k, top_p; theirs: 1024 tokens from
"\\n" at temperature 1, top-k 200) and takes one AdamW step (train's betas, weight decay and clipping) at the
constant learning rate `lr` on a random window of `window` tokens of it (theirs: 100), the optimiser state
carried across updates and generations. A generation is a reporting interval of `updates_per_generation`
updates (`collapse.online`); generation 0 trains on the human train split as in every regime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from collapse.checks import positive, non_negative
from collapse.regimes.base import RegimeConfig, TrainingSet


@dataclass(frozen=True)
class OnlineConfig(RegimeConfig, option="online"):
    """Each generation: E updates, each one sampled sequence and one optimiser step on a window of it."""

    updates_per_generation: int = 1024  # E: updates (sampled sequences, optimiser steps) per generation
    window: int = 0  # tokens of each sequence one step trains on (0 = all data.seq_len of them)
    lr: float = 1e-4  # the constant learning rate of the updates (theirs: 4e-5, fine-tuning GPT-2)
    SAMPLES_WHILE_TRAINING: ClassVar[bool] = True

    def validate(self) -> None:
        positive(self, "regime", "updates_per_generation", "lr")
        non_negative(self, "regime", "window")

    def human_share(self) -> float:
        return 0.0

    def training_size(self, g: int, n_human: int, n_synthetic: int) -> int:
        return self.updates_per_generation

    def check_sizes(self, n_human: int, n_synthetic: int, synthetic_key: str) -> None:
        """One sequence a step: any number of updates trains."""

    def build(self, g, human, fresh, synthetic, rng) -> TrainingSet:
        raise AssertionError("regime=online samples its training rows while it trains (collapse.run.online)")
