"""Provenance: where every training example came from, what labels it was trained on, how deep in the chain of
generations it sits, and how generation 0 and (on the grammar) the truth judge each origin's examples.

Per example (arrays of the train phase, `gen_NNN/rep_NN/`): `train_provenance.npy` (origin: -1 human, j a sample
of generation j), `train_index.npy` (row in its pool), `train_label_source.npy` (`label_sources`: -1 hard labels,
the example's own tokens; j soft labels from generation j's model) and, in continuation mode,
`train_prompt_row.npy` (the human train row whose first `prompt_tokens` tokens begin a synthetic example; -1 for
human examples). Per generation, `provenance.json` (`generation_record`): the composition by origin and by label
source, the mean synthetic depth and the per-origin scores of each replicate's training set, with the same
scores of the human test split as their out-of-sample reference (`origin_scores`).

Synthetic depth: a human example has depth 0; a sample of generation j has depth 1 + D_j, where D_j is the mean
depth of generation j's training set (so D_g = sum_j n_j / N (1 + D_j) over the origins j of generation g's set).
It is computed from every example's origin, hence exact under every regime: replace gives D_g = g, mix with a
human share h gives D_g = (1 - h)(1 + D_{g-1}), accumulate (equal human and sample sizes) D_g = H_{g+1} - 1.
All functions are pure functions of arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from collapse import stats

HARD = -1  # label source of an example trained on its own tokens


def origin_name(j: int) -> str:
    """"human" for -1, else "gen_<j>" (the keys of manifest.json's counts)."""
    return "human" if j < 0 else f"gen_{j}"


LAB_CODE = 1_000_000  # an origin's code in an ecosystem: lab · LAB_CODE + generation (-1 human)


def origins(provenance_N: np.ndarray, lab_N: np.ndarray | None = None) -> np.ndarray:
    """Each example's origin code `[N]`: its generation (-1 human), or in an ecosystem (`lab_N`, the lab whose
    sample it is) lab · LAB_CODE + generation, so an origin is (lab, generation)."""
    if lab_N is None:
        return np.asarray(provenance_N)
    return np.where(np.asarray(provenance_N) < 0, -1, np.asarray(lab_N, np.int64) * LAB_CODE + provenance_N)


def origin_namer(labs: list[str] | None = None) -> Callable[[int], str]:
    """The name of an origin code: `origin_name`, or in an ecosystem "human" / "<lab>/gen_<j>"."""
    if labs is None:
        return origin_name
    return lambda c: "human" if c < 0 else f"{labs[c // LAB_CODE]}/gen_{c % LAB_CODE}"


def origin_order(name: str) -> tuple:
    """A sort key of origin names: human first, then by lab (an ecosystem's "<lab>/gen_<j>") and generation."""
    if name == "human":
        return ("", -1)
    lab, _, gen = name.rpartition("/")
    return (lab, int(gen.removeprefix("gen_")))


def label_name(j: int) -> str:
    """"hard" for -1 (the example's tokens), else "soft_gen_<j>" (generation j's next-token distributions)."""
    return "hard" if j < 0 else f"soft_gen_{j}"


def label_sources(train, teacher: int, g: int, provenance_N: np.ndarray) -> np.ndarray:
    """Each training example's label source `[N]` int32: -1 for hard labels (its own tokens), `teacher` (the
    generation whose model teaches g) for its soft labels (docs/training-targets.md). Generation 0 and
    `train.target=tokens` train on tokens only; otherwise `train.distill_on` picks the rows the teacher labels:
    `samples` the synthetic rows (provenance >= 0), `human` the human rows, `both` every row."""
    if g == 0 or train.target == "tokens":
        return np.full(len(provenance_N), HARD, np.int32)
    synthetic_N = np.asarray(provenance_N) >= 0
    soft_N = {"samples": synthetic_N, "human": ~synthetic_N, "both": np.ones_like(synthetic_N)}[train.distill_on]
    return np.where(soft_N, teacher, HARD).astype(np.int32)


def counts(values_N: np.ndarray, name: Callable[[int], str] = origin_name) -> dict[str, int]:
    """{name(value): how many}: examples by origin (or by label source with `label_name`), in value order."""
    values, n = np.unique(values_N, return_counts=True)
    return {name(int(v)): int(c) for v, c in zip(values, n)}


def depth_of(provenance_N: np.ndarray, depths: Sequence[float]) -> np.ndarray:
    """Each example's synthetic depth `[N]`: 0 for human data, 1 + depths[j] for a sample of generation j."""
    table = np.concatenate([np.asarray(depths, np.float64), [-1.0]])  # index -1 (human) reads 1 + -1 = 0
    return 1.0 + table[np.asarray(provenance_N)]


def mean_depths(provenance: Sequence[np.ndarray], earlier: Sequence[np.ndarray]) -> np.ndarray:
    """Mean synthetic depth `[R]` of each replicate's training set (`provenance[r]`), given the mean depths of
    the earlier generations' training sets (`earlier[j]` `[R]`)."""
    return np.array([depth_of(p, [float(d[r]) for d in earlier]).mean() for r, p in enumerate(provenance)])


def prompt_rows(provenance_N: np.ndarray, index_N: np.ndarray, prompt_index: Callable[[int], np.ndarray]
                ) -> np.ndarray:
    """Continuation mode: for each example, the human train row whose prefix begins it (`prompt_index(j)`: the
    rows origin j's samples continue; an origin code in an ecosystem, `origins`), -1 for a human example."""
    out = np.full(len(provenance_N), -1, np.int64)
    for j in np.unique(provenance_N[provenance_N >= 0]):
        rows = provenance_N == j
        out[rows] = prompt_index(int(j))[index_N[rows]]
    return out


def origin_scores(provenance_N: np.ndarray, nll_gen0_N: np.ndarray, seen_by_gen0_N: np.ndarray,
                  true_nll_N: np.ndarray | None, test_nll_gen0_M: np.ndarray, test_true_nll_M: np.ndarray | None,
                  name: Callable[[int], str] = origin_name) -> tuple[dict[str, dict], dict[str, float]]:
    """How generation 0 and (on the grammar) the truth judge each origin's examples, against the same judges
    on the human test split, which generation 0 never saw (the out-of-sample reference): per-example NLL per
    scored token `[N]` and the test split's `[M]`.

    Per origin: `rows`; `seen_by_gen0`, the share of its rows generation 0 trained on (human train rows: their
    `ppl_gen0` is in-sample, biased low); `ppl_gen0`, the geometric-mean perplexity per token under generation
    0 (exp of the mean NLL per token, as the `ppl_gen0` metric); `ppl_gen0_vs_test`, its ratio to the test
    split's, with `ppl_gen0_vs_test_ci95` (Welch's interval of the NLL difference, exponentiated): 1 means
    "reads like unseen human text", as a perfect generator's samples do; on the grammar `true_nll`, the mean
    true NLL per token (unbiased whoever trained on the rows), `true_nll_vs_test` its difference to the test
    split's and `true_nll_vs_test_ci95`. Returns (per origin, the reference {`rows`, `ppl_gen0`[, `true_nll`]})."""
    reference = {"rows": len(test_nll_gen0_M), "ppl_gen0": float(np.exp(np.mean(test_nll_gen0_M, dtype=np.float64)))}
    if test_true_nll_M is not None:
        reference["true_nll"] = float(np.mean(test_true_nll_M, dtype=np.float64))
    out = {}
    for j in np.unique(provenance_N):
        rows = provenance_N == j
        diff, half = stats.difference_ci(nll_gen0_N[rows], test_nll_gen0_M)
        entry = {"rows": int(rows.sum()), "seen_by_gen0": float(np.mean(seen_by_gen0_N[rows])),
                 "ppl_gen0": float(np.exp(np.mean(nll_gen0_N[rows], dtype=np.float64))),
                 "ppl_gen0_vs_test": math.exp(diff), "ppl_gen0_vs_test_ci95": [math.exp(diff - half),
                                                                               math.exp(diff + half)]}
        if true_nll_N is not None:
            diff, half = stats.difference_ci(true_nll_N[rows], test_true_nll_M)
            entry.update(true_nll=float(np.mean(true_nll_N[rows], dtype=np.float64)), true_nll_vs_test=diff,
                         true_nll_vs_test_ci95=[diff - half, diff + half])
        out[name(int(j))] = entry
    return out, reference


def curation_summary(scores_M: np.ndarray, kept_n: np.ndarray, kept_scores_n: np.ndarray) -> dict[str, float]:
    """How a generation's samples were curated (docs/curation.md): candidates drawn and rows kept, the share
    of the candidates kept (distinct ones: a resampling may keep one twice) and candidates drawn per row kept,
    and the mean score before and after."""
    M, n = len(scores_M), len(kept_n)
    return {"drawn": M, "kept": n, "acceptance": len(np.unique(kept_n)) / M, "drawn_per_kept": M / n,
            "score_mean_before": float(np.mean(scores_M)), "score_mean_after": float(np.mean(kept_scores_n))}


def generation_record(g: int, model: str, parameters: int, prompt_tokens: int, provenance: list[np.ndarray],
                      labels: list[np.ndarray], depths_R: np.ndarray, scores: list[tuple[dict, dict]],
                      curation: list[dict[str, dict]] | None = None, name: Callable[[int], str] = origin_name,
                      label: Callable[[int], str] = label_name) -> dict:
    """Generation g's `provenance.json`: per replicate its training set's composition by origin and by label
    source, its mean synthetic depth, the per-origin scores and their out-of-sample reference (`scores[r]`:
    `origin_scores`, over the scored positions `prompt_tokens`..T-1); with curation, per synthetic origin how
    its samples were curated (`curation[r]`: {origin: `curation_summary`})."""
    reps = [{"replicate": r, "size": len(p), "by_origin": counts(p, name), "by_label_source": counts(labels[r], label),
             "mean_depth": float(depths_R[r]), "scores": scores[r][0], "reference": {"human_test": scores[r][1]},
             **({} if curation is None else {"curation": curation[r]})}
            for r, p in enumerate(provenance)]
    return {"generation": g, "model": model, "parameters": parameters, "prompt_tokens": prompt_tokens,
            "mean_depth": float(np.mean(depths_R)), "replicates": reps}
