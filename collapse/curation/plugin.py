"""A user's verifier, `curate.scorer=package.module:function`: loaded when the config is checked (by
`collapse.validate`, before any compute) and when candidates are scored. Imports nothing of collapse."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

Scorer = Callable[[np.ndarray, int], np.ndarray]  # fn(tokens_NT, prompt_tokens) -> scores [N], higher = better


def load_scorer(path: str) -> Scorer:
    """The function named `package.module:function`; ValueError, ImportError, AttributeError or TypeError
    say why not."""
    module, sep, name = path.partition(":")
    if not (sep and module and name):
        raise ValueError(f"{path!r} is not of the form package.module:function")
    fn = getattr(importlib.import_module(module), name)
    if not callable(fn):
        raise TypeError(f"{path} is not callable")
    return fn
