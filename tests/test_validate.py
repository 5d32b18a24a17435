"""Validation messages that list a group's options take them from the registry (collapse.config.OPTIONS).
The per-key checks are tested in tests/test_config.py (BAD)."""

import pytest

from collapse.config import AnalyticConfig, Config, DataConfig, ModelConfig, RegimeConfig
from collapse.errors import ConfigError
from collapse.validate import validate


@pytest.mark.parametrize("overrides,message", [
    (dict(data=DataConfig()), "data: choose data=grammar|text|hf"),
    (dict(model=ModelConfig()), "model: choose model=tiny|small|gpt2_small|gaussian|gmm|categorical|linreg"),
    (dict(model=AnalyticConfig()), "model: choose model=gaussian|gmm|categorical|linreg"),
    (dict(regime=RegimeConfig()), "regime: choose regime=replace|accumulate|accumulate_subsample|mix"),
])
def test_a_group_without_an_option_lists_the_options(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(Config(**overrides))
    assert str(info.value) == message
