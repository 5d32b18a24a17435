"""Families of collapse measurement, declared by the code that computes their metrics: each metric module names
the metrics it writes (`fnmatch` patterns) and the family they form, so reports and comparisons group metrics by
declaration (docs/metrics.md), and a metric no module declares is "other", not filed under a guess.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    key: str  # the report's section and figure name (`figures/<key>.png`)
    title: str
    rank: int  # its place in a report (families ordered by rank)
    patterns: tuple[str, ...]  # the metric names it holds (fnmatch)
    headline: tuple[str, ...] = ()  # candidates for a comparison's headline figure, in order of preference
    prefixes: tuple[str, ...] = ()  # names that start so are its own, whatever follows (union_distinct_2)


OTHER = Family("other", "Other metrics", 99, ("*",))
_DECLARED: dict[str, Family] = {}


def declare(family: Family) -> Family:
    """Register `family` (a module declares its metrics at import)."""
    _DECLARED[family.key] = family
    return family


def declared() -> dict[str, Family]:
    """{key: family} of every family declared (importing `collapse.metrics` declares the built-in ones), by rank,
    and `OTHER` last."""
    return {f.key: f for f in sorted([*_DECLARED.values(), OTHER], key=lambda f: f.rank)}


def family_of(name: str) -> str:
    """The key of the family that declares metric `name`: one whose prefix it starts with, else the one whose
    matching pattern is the most specific (the longest: `survival_*_true` before `survival_*`), else "other"."""
    for family in declared().values():
        if name.startswith(family.prefixes or "\0"):
            return family.key
    best, length = OTHER.key, -1
    for family in declared().values():
        for pattern in family.patterns:
            if family is not OTHER and len(pattern) > length and fnmatch.fnmatchcase(name, pattern):
                best, length = family.key, len(pattern)
    return best
