"""The run wing: a study's generational loop (`loop.run`, the algorithm box) and the rooms it calls: `study`
(the fixed context), `pools` (who trains on what), `fit` (train, teacher, provenance), `synthesize` (draw and
curate), `phase` (load or compute, then mark) and `analytic` (the one-program studies' run directory)."""

from collapse.run.loop import run  # noqa: F401
