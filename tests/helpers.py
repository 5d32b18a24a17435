"""Tiny configurations shared by the tests (d_model 32, 2 layers, context 32)."""

from collapse.config import Config, GrammarConfig, SampleConfig, TrainConfig, TransformerConfig

TINY_MODEL = TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64, context=32)


def tiny_config(**overrides) -> Config:
    base = dict(
        data=GrammarConfig(vocab_size=16, n_states=4, n_train=64, n_valid=16, n_test=32, seq_len=16),
        model=TINY_MODEL,
        train=TrainConfig(batch_size=16, epochs=2, log_every=4),
        sample=SampleConfig(batch_size=64),
        generations=2,
        compilation_cache="",
    )
    base.update(overrides)
    return Config(**base)
