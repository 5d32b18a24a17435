"""`curate=none`: every sample joins the pools as drawn."""

from __future__ import annotations

from dataclasses import dataclass

from collapse.curation.base import CurateConfig, Drawing, Synthesis


@dataclass(frozen=True)
class NoCurateConfig(CurateConfig, option="none"):
    """`curate=none`: every sample joins the pools as drawn."""

    def curate(self, d: Drawing) -> Synthesis:
        tokens_RNT, index = d.draw(d.n, 0)
        return Synthesis(list(tokens_RNT), list(tokens_RNT), index)
