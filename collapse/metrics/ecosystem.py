"""Measures of several labs together (docs/ecosystems.md): how alike two labs' models and samples have become
(homogenisation), how far the labs' mixture is from the truth, and what their samples pooled keep. Pure
functions of arrays; the model passes are the family's (`collapse.families.transformer.divergences`, `logprob`).

Rows of a round: a pair of labs a, b (lab "a|b") `kl_pair_ab` = KL(a ‖ b), `kl_pair_ba`, `js_pair` per token on
the human test split's contexts, `cross_ppl_ab` (a's samples under b's model) and `cross_ppl_ba`, `bigram_overlap`
(Jaccard of their distinct bigrams); the ecosystem (lab "*") `homogenisation_js` (the mean JS over pairs),
`kl_true_mixture` (KL from the truth to the labs' mixture), `union_<metric>` (diversity and tails of the labs'
samples pooled: an equal share from each, as many rows as one lab's) and the web's `web_rows`,
`web_synthetic_share`, `web_mean_depth`.
"""

from __future__ import annotations

import numpy as np

from collapse.metrics import diversity
from collapse.metrics.families import Family, declare

declare(Family("ecosystem", "Between labs", 7, ("kl_pair_*", "js_pair", "cross_ppl_*", "bigram_overlap",
                                                "homogenisation_*", "kl_true_mixture", "union_*", "web_*"),
               headline=("homogenisation_js",)))

PAIR, ALL = "{a}|{b}", "*"  # the `lab` of a pair's rows and of the ecosystem's


def bigram_overlap(a_NT: np.ndarray, b_NT: np.ndarray, vocab_size: int) -> float:
    """|A ∩ B| / |A ∪ B| of the two corpora's distinct bigrams (within sequences): 1 when they use the same ones."""
    a, b = (np.unique(diversity.ngram_ids(x, 2, vocab_size)) for x in (a_NT, b_NT))
    union = len(np.union1d(a, b))
    return float(len(np.intersect1d(a, b)) / union) if union else float("nan")


def mixture_kl(true_logprob_N: np.ndarray, logprob_KN: np.ndarray, seq_len: int) -> float:
    """KL(true ‖ mixture) per token on samples of the truth: mean[log p(x) − log((1/K) Σ_k q_k(x))] / T, the
    labs' models mixed as generative processes (a sequence from a lab chosen uniformly)."""
    lp_KN = np.asarray(logprob_KN, np.float64)
    top_N = lp_KN.max(axis=0)
    mix_N = top_N + np.log(np.exp(lp_KN - top_N).mean(axis=0))
    return float(np.mean(np.asarray(true_logprob_N, np.float64) - mix_N) / seq_len)
