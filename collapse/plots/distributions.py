"""Distributions within a run: per-sequence histograms by generation, curation's scores before and after,
rank-frequency curves, bucket masses and each generation's training-set composition (`provenance`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from collapse.plots import style  # noqa: E402
from collapse.provenance import origin_order  # noqa: E402


def _shared_bins(groups: list[np.ndarray], bins: int, log_x: bool) -> np.ndarray:
    """`bins` + 1 edges over the finite (and, on a log style.axis, positive) values of all `groups`."""
    pooled = np.concatenate(groups)
    pooled = pooled[np.isfinite(pooled) & ((pooled > 0) if log_x else True)]
    lo, hi = pooled.min(), pooled.max()
    hi = hi if hi > lo else lo + 1
    return np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(lo, hi, bins + 1)


def _share_hist(ax, x: np.ndarray, edges: np.ndarray, **look) -> None:
    """The share of `x` in each bin (values outside the edges, nan and inf in none)."""
    ax.hist(x, edges, weights=np.full(len(x), 1 / max(len(x), 1)), **look)


def histograms(values: dict[int, np.ndarray], path: Path, xlabel: str, reference: tuple[str, np.ndarray] | None = None,
               log_x: bool = False, bins: int = 50) -> Path:
    """One panel per generation on shared axes and bins (Shumailov et al.'s per-sequence figure): the share of
    sequences per bin, replicates pooled; `reference` (label, values) is outlined in every panel."""
    edges = _shared_bins([*values.values(), *([] if reference is None else [reference[1]])], bins, log_x)
    fig, axes = style.grid(len(values), 5, 3.0, 2.4, top=0.55, sharex=True, sharey=True)
    for ax, (g, x) in zip(axes, sorted(values.items())):
        _share_hist(ax, x, edges, color="C0", alpha=0.8, label="samples")
        if reference is not None:
            _share_hist(ax, reference[1], edges, histtype="step", color="k", lw=1, label=reference[0])
        ax.set_title(f"generation {g}", fontsize=9)
        if log_x:
            ax.set_xscale("log")
    axes[0].set_ylabel("share of sequences")
    handles, _ = axes[0].get_legend_handles_labels()
    style.top_legend(fig, handles)
    fig.supxlabel(xlabel, fontsize=9)
    return style.save(fig, path)


def before_after(before: dict[int, np.ndarray], after: dict[int, np.ndarray], path: Path, xlabel: str,
                 bins: int = 40) -> Path:
    """One panel per generation on shared bins: the share of candidates per bin before a selection (filled)
    and of the rows it kept (outlined), replicates pooled; the legend in the top margin."""
    edges = _shared_bins([*before.values(), *after.values()], bins, log_x=False)
    fig, axes = style.grid(len(before), 5, 3.0, 2.4, top=0.55, sharex=True, sharey=True)
    for ax, g in zip(axes, sorted(before)):
        _share_hist(ax, before[g], edges, color="C0", alpha=0.6, label="candidates")
        if g in after:
            _share_hist(ax, after[g], edges, histtype="step", color="k", lw=1.2, label="kept")
        ax.set_title(f"generation {g}", fontsize=9)
    axes[0].set_ylabel("share")
    handles, _ = axes[0].get_legend_handles_labels()
    style.top_legend(fig, handles)
    fig.supxlabel(xlabel, fontsize=9)
    return style.save(fig, path)


def rank_frequency(counts: dict[int, np.ndarray], human_V: np.ndarray, path: Path, truth_V: np.ndarray | None = None,
                   last_seen_RV: np.ndarray | None = None) -> Path:
    """Left: rank-frequency curves (log-log) of the generations in `counts`, coloured in generation order (a
    sequential colormap), the human train split (orange) and the truth (black dashed, on top); the legend beside
    the axes. Right: the last generation whose samples held each type, against its human frequency rank."""
    fig = plt.figure(figsize=(12, 4.2))
    ax, ax2 = style.axes_at(fig, 0.75, 0.6, 4.6, 3.4), style.axes_at(fig, 7.35, 0.6, 4.45, 3.4)
    cmap, gens = plt.get_cmap("viridis"), sorted(counts)
    for i, g in enumerate(gens):
        c_V = counts[g]
        f = np.sort(c_V[c_V > 0])[::-1] / c_V.sum()
        ax.loglog(np.arange(1, len(f) + 1), f, color=cmap(0.85 * i / max(len(gens) - 1, 1)), lw=1.2, label=f"gen {g}")
    for label, ref_V, look in (("human train", human_V, dict(color="tab:orange", lw=1.8, zorder=4)),
                                ("truth", truth_V, dict(color="k", ls="--", lw=1.4, zorder=5))):
        if ref_V is not None:
            f = np.sort(ref_V[ref_V > 0])[::-1] / ref_V.sum()
            ax.loglog(np.arange(1, len(f) + 1), f, label=label, **look)
    ax.set_xlabel("rank")
    ax.set_ylabel("frequency (share of tokens)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    if last_seen_RV is not None:
        rank_V = np.empty(len(human_V), int)
        rank_V[np.argsort(-human_V, kind="stable")] = np.arange(1, len(human_V) + 1)
        seen = human_V > 0
        for r, ls_V in enumerate(last_seen_RV):
            ax2.scatter(rank_V[seen], ls_V[seen], s=4, alpha=0.4, color=f"C{r % 10}", label=f"replicate {r}")
        ax2.set_xscale("log")
        ax2.set_ylim(-1.5, max(int(last_seen_RV.max()), 0) + 0.5)  # -1 (never) to the newest generation
        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_xlabel("human frequency rank")
        ax2.set_ylabel("last generation sampled (-1: never)")
    else:
        ax2.axis("off")
    return style.save(fig, path)


def bucket_bars(masses: dict[str, np.ndarray], labels: tuple[str, ...], path: Path) -> Path:
    """Stacked bars: each corpus' share of tokens in each frequency bucket (`masses[name]` sums to 1)."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(masses), 3.2))
    bottom = np.zeros(len(masses))
    stack = np.array(list(masses.values()))
    for i, label in enumerate(labels):
        ax.bar(list(masses), stack[:, i], bottom=bottom, color=f"C{i}", label=label)
        bottom += stack[:, i]
    ax.set_ylabel("share of tokens")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return style.save(fig, path)


MAX_ORIGINS = 12  # origins named in the provenance legend; more get a colorbar


def provenance(shares: dict[int, dict[str, float]], depths: dict[int, float], path: Path) -> Path:
    """Left: the training set's composition by origin per generation, one stacked bar each (human at the bottom,
    then the samples of each generation, coloured in generation order; bars, not areas, since a regime such as
    replace changes the composition at once). Right: the mean synthetic depth of each generation's training
    set. Legend (or, past `MAX_ORIGINS` origins, a colorbar) beside the bars."""
    gens = sorted(shares)
    origins = sorted({o for s in shares.values() for o in s}, key=origin_order)  # human, then (lab,) generation
    last = max([origin_order(o)[1] for o in origins], default=0)
    labs = sorted({origin_order(o)[0] for o in origins if o != "human"})  # an ecosystem's: a colormap each
    cmaps = [plt.get_cmap(c) for c in ("viridis", "autumn", "winter", "cool", "spring", "copper")]
    color = lambda o: "0.55" if o == "human" else cmaps[labs.index(origin_order(o)[0]) % len(cmaps)](  # noqa: E731
        origin_order(o)[1] / max(last, 1))
    cmap = cmaps[0]
    fig = plt.figure(figsize=(11, 3.8))
    ax, ax2 = style.axes_at(fig, 0.75, 0.6, 4.4, 3.0), style.axes_at(fig, 7.0, 0.6, 3.8, 3.0)
    bottom = np.zeros(len(gens))
    for o in origins:
        share = np.array([shares[g].get(o, 0.0) for g in gens])
        ax.bar(gens, share, bottom=bottom, width=0.8, color=color(o), label=o.replace("_", " "), lw=0)
        bottom += share
    ax.set_xlabel("generation")
    ax.set_ylabel("share of the training set")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(origins) <= MAX_ORIGINS:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, title="origin",
                  title_fontsize=7)
    else:
        bar = fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(0, last), cmap), cax=style.axes_at(fig, 5.3, 0.6, 0.12, 3.0))
        bar.set_label("samples of generation (grey: human)", fontsize=7)
    ax2.plot(gens, [depths[g] for g in gens], marker="o" if len(gens) <= 50 else None, ms=3, color="C3")
    ax2.set_xlabel("generation")
    ax2.set_ylabel("mean synthetic depth (generations)")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    return style.save(fig, path)
