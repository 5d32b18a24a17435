"""Membership tests without a watermark (docs/membership.md): did a suspect model learn from a source's output?

    released vs withheld   a source draws its corpus and, with `sample.withheld`, more rows the same way that it
                           never releases; a model that trained on the released rows gives them higher
                           log-likelihood than the withheld ones (Mann–Whitney, one-sided)
    palimpsest             Kuditipudi et al. (2025): a model trained for one pass over shuffled data remembers its
                           last batches best, and so does a model derived from it; the suspect's log-likelihood
                           of the source's training rows rises with their place in its training order
                           (Spearman, one-sided), optionally less a reference model's

Both nulls are exact by randomisation: which rows were released is a fair draw, and the order is a random
permutation, both independent of any model that did not learn from them, so an independent suspect's p-values
are uniform. Pure functions of log-likelihoods; `collapse-audit` reads them from run directories.
"""

from __future__ import annotations

import numpy as np

from collapse.config import Config
from collapse.errors import ConfigError
from collapse.rng import Phase, key_for, numpy_rng
from collapse.stats import RankTest, rank_correlation, rank_sum
from collapse.train import batch_order, steps_per_epoch, total_steps


def released_vs_withheld(logp_released_N: np.ndarray, logp_withheld_M: np.ndarray) -> RankTest:
    """Do the released rows score higher than the withheld ones under the suspect? (statistic: U)"""
    return rank_sum(logp_released_N, logp_withheld_M)


def auc(test: RankTest, n_released: int, n_withheld: int) -> float:
    """U / (n released · n withheld): the chance a released row scores above a withheld one (ties half)."""
    return test.statistic / (n_released * n_withheld)


def training_order(cfg: Config, g: int, r: int, n_rows: int, lab: int = 0) -> np.ndarray:
    """The optimiser step at which each of generation g's `n_rows` training rows (replicate r, lab `lab`) was
    seen, -1 for rows the pass left out: the batch order `collapse.train.fit` drew from the run's key. Refused
    unless generation g took at most one pass over its rows (a row seen twice has no one place in the order)."""
    t = cfg.train
    steps = total_steps(n_rows, cfg.data.seq_len, t)
    if steps > steps_per_epoch(n_rows, t.batch_size):
        key = "train.tokens" if t.tokens else "train.epochs"
        raise ConfigError(key, f"the palimpsestic test needs one shuffled pass over the training rows; generation "
                               f"{g} took {steps} steps over {n_rows} rows in batches of {t.batch_size}, "
                               f"{steps / steps_per_epoch(n_rows, t.batch_size):.2f} passes")
    index_XB = batch_order(numpy_rng(key_for(cfg.seed, g, r, Phase.TRAIN, lab)), n_rows, t.batch_size, steps)
    position_N = np.full(n_rows, -1, np.int64)
    position_N[index_XB] = np.arange(steps)[:, None]
    return position_N


def palimpsest(logp_N: np.ndarray, position_N: np.ndarray, reference_logp_N: np.ndarray | None = None) -> RankTest:
    """Does the suspect's log-likelihood of the training rows (less the reference's, if given) rise with their
    place in the training order? Rows the pass left out are not scored. (statistic: Spearman's rho)"""
    score_N = logp_N - (0.0 if reference_logp_N is None else reference_logp_N)
    seen = position_N >= 0
    return rank_correlation(score_N[seen], position_N[seen])
