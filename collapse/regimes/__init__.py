"""Data regimes: which pools make generation g's training set (`base.RegimeConfig`), one module per option.

Importing this package registers every regime; a new one is a module here (its schema, validation and
behaviour, registered by `option=`), its YAML in conf/regime/ and its test.
"""

# registration, in the order `collapse --help` lists the options
from collapse.regimes import replace, accumulate, accumulate_subsample, mix, online  # noqa: F401, I001
from collapse.regimes.base import (RegimeConfig, TrainingSet, check_fresh, check_sizes, fresh_needed,  # noqa: F401
                                   training_set, training_size)
from collapse.regimes.accumulate import AccumulateConfig  # noqa: F401
from collapse.regimes.accumulate_subsample import AccumulateSubsampleConfig  # noqa: F401
from collapse.regimes.mix import MixConfig  # noqa: F401
from collapse.regimes.online import OnlineConfig  # noqa: F401
from collapse.regimes.replace import ReplaceConfig  # noqa: F401
