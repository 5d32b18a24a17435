"""Metrics of a generation, pure functions of arrays: `perplexity`, `diversity`, `tails`, `semantic`; `score`
applies them to a generation (which metric on what); `families` groups them as their modules declare.
Importing the package declares every built-in family (curation's is declared by `collapse.curation.base`)."""

from collapse.metrics import perplexity, diversity, tails, score  # noqa: F401, I001  (declare their families)
