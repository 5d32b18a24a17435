"""Curation: what happens to a generation's samples before they join the pools (README "Curation").

`select` draws nothing itself: it ranks or filters candidates by their scores (quantile band, threshold with
further rounds) and summarises what was kept (`Curated`); `scores` turns candidates into scores (the exact
truth, a model's perplexity, a user's verifier: `plugin`). `collapse.loop` draws the candidates and wires
them together.
"""
