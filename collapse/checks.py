"""The checks of single config values that every option's `validate` uses: each raises `ConfigError` naming the
key as the command line spells it (`train.lr`, or `generations` for a top-level key, prefix ""). No JAX."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from collapse.errors import ConfigError


def check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def positive(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        check(value > 0, key(prefix, name), f"must be > 0, got {value}")


def non_negative(obj: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        check(value >= 0, key(prefix, name), f"must be >= 0, got {value}")


def one_of(value: str, name: str, options: tuple[str, ...]) -> None:
    check(value in options, name, f"must be one of {', '.join(options)}; got {value!r}")


def fraction(value: float, name: str, *, closed_low: bool = True, closed_high: bool = True) -> None:
    low_ok = value >= 0 if closed_low else value > 0
    high_ok = value <= 1 if closed_high else value < 1
    interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
    check(math.isfinite(value) and low_ok and high_ok, name, f"must be a fraction in {interval}, got {value}")


def finite(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float):
            check(math.isfinite(value), key(prefix, f.name), f"must be finite, got {value}")
