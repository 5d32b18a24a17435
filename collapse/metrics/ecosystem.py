"""Measures of several labs together (docs/ecosystems.md): how alike two labs' models and samples have become
(homogenisation), how far the labs' mixture is from the truth, and what their samples pooled keep. Pure
functions of arrays; the model passes are the family's (`collapse.families.transformer.divergences`, `logprob`).

Rows of a round: a pair of labs a, b (lab "a|b") `kl_pair_ab` = KL(a ‖ b), `kl_pair_ba`, `js_pair` per token on
the human test split's contexts, `cross_ppl_ab` (a's samples under b's model) and `cross_ppl_ba`, `bigram_overlap`
(Jaccard of their distinct bigrams), `private_gain_ab` (how much better a's model fits b's private human rows
than the human test split, nats per token: b's private data reaching a) and `private_gain_ba`; the ecosystem
(lab "*") `homogenisation_js` (the mean JS over pairs), `kl_true_mixture` (KL from the truth to the labs'
mixture), `labs_mean_<metric>` (the labs' own values averaged: how well the ecosystem's models do on the whole,
Hodel & West's ecosystem performance), `union_<metric>` (diversity and tails of the labs' samples pooled: an
equal share from each, as many rows as one lab's) and the web's `web_rows`, `web_synthetic_share`,
`web_mean_depth`.
"""

from __future__ import annotations

import numpy as np

from collapse.metrics import diversity
from collapse.metrics.families import Family, declare

declare(Family("ecosystem", "Between labs", 8, ("kl_pair_*", "js_pair*", "cross_ppl_*", "bigram_overlap*",
                                                "private_gain_*", "homogenisation_*", "kl_true_mixture", "web_*"),
               headline=("homogenisation_js",), prefixes=("labs_mean_", "union_")))

PAIR, ALL = "{a}|{b}", "*"  # the `lab` of a pair's rows and of the ecosystem's


# the labs' own metrics whose mean over labs the ecosystem reports (`labs_mean_<metric>`): quality, tails, diversity
MEAN_OVER_LABS = ("kl_true", "ppl_human_test", "survival_true", "survival_tail_true", "tail_mass_ratio_true",
                  "distinct_2", "self_bleu4", "closed_book_acc", "hallucination_rate")


def labs_mean(rows: list[dict]) -> dict[int, dict[str, float]]:
    """{replicate: {labs_mean_<metric>: value}}: the mean over labs of the labs' own rows of a round (`lab`,
    `replicate`, `metric`, `value`) for each metric of `MEAN_OVER_LABS` that every lab reports, with a value, for
    that replicate."""
    by: dict[tuple[int, str], dict[str, float | None]] = {}
    for row in rows:
        if row["metric"] in MEAN_OVER_LABS:
            by.setdefault((row["replicate"], row["metric"]), {})[row["lab"]] = row["value"]
    labs = {row["lab"] for row in rows}
    out: dict[int, dict[str, float]] = {}
    for (r, metric), values in sorted(by.items()):
        if values.keys() == labs and all(isinstance(v, (int, float)) for v in values.values()):
            out.setdefault(r, {})[f"labs_mean_{metric}"] = float(np.mean(list(values.values())))
    return out


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


def private_gain(test_logprob_M: np.ndarray, private_logprob_N: np.ndarray, seq_len: int) -> float:
    """Nats per token by which a model fits another lab's private human rows better than the human test split:
    mean log q(private) / T − mean log q(test) / T. Both are human rows the model never trained on, unless the
    private ones reached it through the other lab's samples: 0 (within its interval) for labs that share nothing
    (Vu et al.'s cross-task transfer, measured on the rows themselves)."""
    return float((np.mean(private_logprob_N, dtype=np.float64) - np.mean(test_logprob_M, dtype=np.float64)) / seq_len)
