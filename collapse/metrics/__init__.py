"""Metrics of a generation, pure functions of arrays: `perplexity`, `diversity`, `tails`, `semantic`; `score`
applies them to a generation (which metric on what); `families` groups them as their modules declare (importing
`score` declares every built-in family; curation's is declared by `collapse.curation.base`)."""
