"""Validation messages that list a group's options take them from the registry (collapse.config.OPTIONS).
The per-key checks are tested in tests/test_config.py (BAD)."""

from dataclasses import dataclass

import pytest

from collapse.config import Config
from collapse.data import DataConfig
from collapse.families import AnalyticConfig, ModelConfig
from collapse.regimes import RegimeConfig
from collapse.errors import ConfigError
from collapse.validate import validate


@dataclass(frozen=True)
class Unregistered(RegimeConfig):
    """A regime schema no module registered under an option name."""

    def training_size(self, g, n_human, n_synthetic):
        return n_human

    def build(self, g, human, fresh, synthetic, rng):
        return None


@pytest.mark.parametrize("overrides,message", [
    (dict(data=DataConfig()), "data: choose data=grammar|facts|text|hf"),
    (dict(model=ModelConfig()), "model: choose model=tiny|small|gpt2_small|pretrained|gaussian|gmm|categorical|linreg"),
    (dict(model=AnalyticConfig()), "model: choose model=gaussian|gmm|categorical|linreg"),
    (dict(regime=Unregistered()), "regime: choose regime=replace|accumulate|accumulate_subsample|mix"),  # and more,
    # where a test module has registered a regime of its own (tests/test_regimes.py)
])
def test_a_group_without_an_option_lists_the_options(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(Config(**overrides))
    assert str(info.value).startswith(message)
