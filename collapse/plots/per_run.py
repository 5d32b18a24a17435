"""The per-run figures drawn from a run directory's arrays (for report.md): per-sequence histograms, rank-frequency
curves and bucket masses of the samples (`distribution_figures`), and curation's scores (`curation_figure`)."""

from __future__ import annotations

import numpy as np

from collapse.files import load_array
from collapse.plots import distributions
from collapse.store import RunDir
from collapse.tables import shown_generations


def _rep_arrays(store: RunDir, name: str) -> dict[int, list[np.ndarray]]:
    """{generation: [rep_NN/<name>.npy per replicate, in order]} for the finished generations that have the file."""
    out = {}
    for g in store.finished_generations():
        paths = [p for r in store.replicates(g) if (p := store.array(g, r, name)).exists()]
        if paths:
            out[g] = [load_array(p) for p in paths]
    return out


def _human_arrays(store: RunDir, name: str) -> list[np.ndarray]:
    """`human/rep_NN/<name>.npy` of every replicate that has its own human data, else `[human/<name>.npy]`
    (or [] if absent)."""
    own = [store.human(name, r) for r in store.human_replicates()]
    paths = [p for p in own if p.exists()] or [p for p in [store.human(name)] if p.exists()]
    return [load_array(p) for p in paths]


HISTOGRAM_PANELS = 6


def histogram_generations(generations: list[int]) -> list[int]:
    """The generations a per-sequence histogram shows: all up to six, else six log-spaced from the first to the
    last (`shown_generations`; of ten: 0, 1, 2, 3, 5, 9, the panels of Shumailov et al.'s Fig. 1)."""
    return shown_generations(sorted(generations), HISTOGRAM_PANELS)


def _histogram_generations(arrays: dict[int, list]) -> dict[int, list]:
    """`arrays` at the generations a histogram shows (`histogram_generations`)."""
    return {g: arrays[g] for g in histogram_generations(list(arrays))}


def distribution_figures(store: RunDir, seq_len: int) -> list[str]:
    """Per-sequence histograms, rank-frequency curves and bucket masses; markdown image lines."""
    from collapse.metrics.tails import BUCKETS, bucket_mass

    figures = store.path / "figures"
    made = []
    ppl = _histogram_generations(_rep_arrays(store, "ppl_gen0"))
    if ppl:
        test0 = _rep_arrays(store, "ppl_test").get(0)
        made.append(distributions.histograms({g: np.concatenate(x) for g, x in ppl.items()}, figures / "ppl_gen0_hist.png",
                                     "per-sequence perplexity of the samples under generation 0 (log scale)",
                                     None if test0 is None else ("gen 0 on human test", np.concatenate(test0)),
                                     log_x=True))
    true_lp, human_lp = _histogram_generations(_rep_arrays(store, "true_logprob")), _human_arrays(store, "true_logprob")
    if true_lp and human_lp:
        made.append(distributions.histograms({g: -np.concatenate(x) / seq_len for g, x in true_lp.items()},
                                     figures / "true_nll_hist.png", "true NLL per token of each sample (nats)",
                                     ("human train", -np.concatenate(human_lp) / seq_len)))
    counts, human_counts = _rep_arrays(store, "token_counts"), _human_arrays(store, "token_counts")
    buckets = _human_arrays(store, "buckets")  # per human dataset; replicate r uses r's, or the shared one
    if counts and human_counts and len(buckets) == len(human_counts):
        human_V = np.sum(human_counts, axis=0)
        truth = _human_arrays(store, "unigram_true")
        last_seen = load_array(store.last_seen) if store.last_seen.exists() else None
        pooled = {g: np.sum(c, axis=0) for g, c in _histogram_generations(counts).items()}
        made.append(distributions.rank_frequency(pooled, human_V, figures / "rank_frequency.png", truth[0] if truth else None,
                                         last_seen))
        share = lambda c: np.mean([bucket_mass(c_V, buckets[r % len(buckets)]) for r, c_V in enumerate(c)], axis=0)  # noqa: E731
        masses = {"human": share(human_counts)} | {f"gen {g}": share(c) for g, c in counts.items()}
        made.append(distributions.bucket_bars(masses, BUCKETS, figures / "bucket_mass.png"))
    return [f"![{p.stem}]({p.relative_to(store.path)})" for p in made]


# What the curation scores are, by `curate` option (docs/curation.md).
_CURATION_SCORES = {"verifier": "verifier score per generated token (truth: log-probability, nats)",
                    "perplexity": "perplexity per generated token", "correct": "true log-probability per generated "
                    "token (nats): candidates as drawn, kept as corrected"}


def curation_figure(store: RunDir, option: str) -> list[str]:
    """`figures/curation_scores.png`: per generation the scores of every candidate and of the rows kept;
    markdown image lines ([] without curation arrays)."""
    before, after = _rep_arrays(store, "curate_scores"), _rep_arrays(store, "curate_scores_kept")
    if not before:
        return []
    before = _histogram_generations(before)
    figure = distributions.before_after({g: np.concatenate(x) for g, x in before.items()},
                                {g: np.concatenate(x) for g, x in after.items() if g in before},
                                store.path / "figures" / "curation_scores.png",
                                _CURATION_SCORES.get(option, "curation score"))
    return ["Scores of the candidates drawn (filled) and of the rows kept (outlined), replicates pooled (at most "
            "six generations, log-spaced):", "",
            f"![curation_scores]({figure.relative_to(store.path)})", ""]
