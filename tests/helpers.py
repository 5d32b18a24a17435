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


# Statistical checks compare a mean over many independent replicates with its expectation. Z = 4 standard
# errors: a two-sided normal tail of 6.3e-5 per check, so a correct simulation fails a check about once in
# 16 000 runs (the means are over >= 1000 replicates, close enough to normal; each test says why).
Z = 4.0


def assert_mean(values, expected, sd, what: str, z: float = Z) -> None:
    """|mean(values) - expected| <= z sd / sqrt(n): `sd` is the standard deviation of one value (exact where
    the theory gives it, else the sample's)."""
    import numpy as np

    values = np.asarray(values, np.float64)
    bound = z * sd / np.sqrt(len(values))
    assert abs(values.mean() - expected) <= bound, (
        f"{what}: mean {values.mean():.6g} vs theory {expected:.6g}, allowed ± {bound:.3g} ({z} standard errors)")
