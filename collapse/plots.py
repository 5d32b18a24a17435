"""Matplotlib figures (Agg backend, files only)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from collapse.stats import aggregate, mean_ci  # noqa: E402
from collapse.files import atomic_write  # noqa: E402


def save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def _grid(n: int, cols: int, width: float, height: float, **kw):
    """`n` panels of `width` x `height` inches in rows of at most `cols`, as even as they go (6 of 5: two rows
    of 3), with fixed margins in inches (matplotlib's tight_layout costs a full extra drawing pass, which
    dominated the per-generation report)."""
    rows = math.ceil(n / cols)
    cols = math.ceil(n / rows)
    W, H = width * cols, height * rows + 0.4
    fig, axes = plt.subplots(rows, cols, figsize=(W, H), squeeze=False, **kw)
    fig.subplots_adjust(left=0.8 / W, right=1 - 0.15 / W, bottom=0.55 / H, top=1 - 0.35 / H,
                        wspace=0.6 / (width - 0.6), hspace=0.75 / (height - 0.75))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


MAX_LINES = 20  # replicates drawn as thin lines


def metric_curves(rows: list[dict], panels: dict[str, list[str]], path: Path) -> Path:
    """One panel per entry of `panels` (title -> metric names): each metric's mean across replicates with its
    95 % band; a panel with a single metric also shows the first `MAX_LINES` replicates as thin grey lines.
    Beyond 50 generations the means are drawn without markers."""
    agg = aggregate(rows)
    fig, axes = _grid(len(panels), 4, 3.6, 2.7)
    for ax, (title, names) in zip(axes, panels.items()):
        for i, name in enumerate(names):
            gens = sorted(agg[name])
            if not gens:  # undefined in every generation (e.g. zipf_exponent of a one-type corpus)
                continue
            stats = np.array([mean_ci(agg[name][g]) for g in gens])
            if len(names) == 1:
                by_rep = {}
                for row in rows:
                    if row["metric"] == name and row["value"] is not None:
                        by_rep.setdefault(row["replicate"], []).append((row["generation"], row["value"]))
                for series in list(by_rep.values())[:MAX_LINES]:
                    x, y = zip(*sorted(series))
                    ax.plot(x, y, color="0.7", lw=0.8)
            ax.plot(gens, stats[:, 0], marker="o" if len(gens) <= 50 else None, ms=3, color=f"C{i}", label=name)
            if np.isfinite(stats[:, 1]).any():
                ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=f"C{i}", alpha=0.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(names) > 1:
            ax.legend(fontsize=6)
    return save(fig, path)


def histograms(values: dict[int, np.ndarray], path: Path, xlabel: str, reference: tuple[str, np.ndarray] | None = None,
               log_x: bool = False, bins: int = 50) -> Path:
    """One panel per generation on shared axes and bins (Shumailov et al.'s per-sequence figure): the share of
    sequences per bin, replicates pooled; `reference` (label, values) is outlined in every panel."""
    pooled = np.concatenate([*values.values(), *([] if reference is None else [reference[1]])])
    pooled = pooled[np.isfinite(pooled) & ((pooled > 0) if log_x else True)]
    lo, hi = pooled.min(), pooled.max()
    hi = hi if hi > lo else lo + 1
    edges = np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(lo, hi, bins + 1)
    fig, axes = _grid(len(values), 5, 3.0, 2.4, sharex=True, sharey=True)
    for ax, (g, x) in zip(axes, sorted(values.items())):
        ax.hist(x, edges, weights=np.full(len(x), 1 / len(x)), color="C0", alpha=0.8)
        if reference is not None:
            ax.hist(reference[1], edges, weights=np.full(len(reference[1]), 1 / len(reference[1])),
                    histtype="step", color="k", lw=1, label=reference[0])
        ax.set_title(f"generation {g}")
        if log_x:
            ax.set_xscale("log")
    axes[0].set_ylabel("share of sequences")
    if reference is not None:
        axes[0].legend(fontsize=7)
    fig.supxlabel(xlabel, fontsize=9)
    return save(fig, path)


def before_after(before: dict[int, np.ndarray], after: dict[int, np.ndarray], path: Path, xlabel: str,
                 bins: int = 40) -> Path:
    """One panel per generation on shared bins: the share of candidates per bin before a selection (filled)
    and of the rows it kept (outlined), replicates pooled."""
    pooled = np.concatenate([*before.values(), *after.values()])
    pooled = pooled[np.isfinite(pooled)]
    lo, hi = pooled.min(), pooled.max()
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    fig, axes = _grid(len(before), 5, 3.0, 2.4, sharex=True, sharey=True)
    for ax, g in zip(axes, sorted(before)):
        for x, style in ((before[g], dict(color="C0", alpha=0.6, label="candidates")),
                         (after.get(g), dict(histtype="step", color="k", lw=1.2, label="kept"))):
            if x is not None:
                ax.hist(x, edges, weights=np.full(len(x), 1 / len(x)), **style)
        ax.set_title(f"generation {g}")
    axes[0].set_ylabel("share")
    axes[0].legend(fontsize=7)
    fig.supxlabel(xlabel, fontsize=9)
    return save(fig, path)


def rank_frequency(counts: dict[int, np.ndarray], human_V: np.ndarray, path: Path, truth_V: np.ndarray | None = None,
                   last_seen_RV: np.ndarray | None = None) -> Path:
    """Left: rank-frequency curves (log-log) of every generation's samples, the human train split and the
    truth. Right: the last generation whose samples held each type, against its human frequency rank."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    last = max(counts) if counts else 0
    for g, c_V in sorted(counts.items()):
        f = np.sort(c_V[c_V > 0])[::-1] / c_V.sum()
        ax.loglog(np.arange(1, len(f) + 1), f, color=cmap(g / max(last, 1)), lw=1, label=f"gen {g}")
    for label, ref_V, style in (("human train", human_V, "k--"), ("truth", truth_V, "k:")):
        if ref_V is not None:
            f = np.sort(ref_V[ref_V > 0])[::-1] / ref_V.sum()
            ax.loglog(np.arange(1, len(f) + 1), f, style, lw=1.2, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("frequency")
    ax.legend(fontsize=7, ncol=2)
    if last_seen_RV is not None:
        rank_V = np.empty(len(human_V), int)
        rank_V[np.argsort(-human_V, kind="stable")] = np.arange(1, len(human_V) + 1)
        seen = human_V > 0
        for r, ls_V in enumerate(last_seen_RV):
            ax2.scatter(rank_V[seen], ls_V[seen], s=4, alpha=0.4, color=f"C{r % 10}", label=f"replicate {r}")
        ax2.set_xscale("log")
        ax2.set_xlabel("human frequency rank")
        ax2.set_ylabel("last generation sampled (-1: never)")
    else:
        ax2.axis("off")
    fig.tight_layout()
    return save(fig, path)


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
    return save(fig, path)


MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _clip_to_means(ax, means: list[np.ndarray], lows: list[np.ndarray], highs: list[np.ndarray]) -> None:
    """Y limits that hold every mean and the bands up to half the means' range beyond them: one wide band
    (few units) must not flatten the lines whose ordering the panel is about."""
    finite = lambda parts: (x := np.concatenate(parts))[np.isfinite(x)]  # noqa: E731
    m, band_lo, band_hi = finite(means), finite(lows), finite(highs)
    if not m.size:
        return
    lo, hi = m.min(), m.max()
    span = hi - lo or abs(hi) * 0.1 or 1.0
    low, high = lo - 0.05 * span, hi + 0.05 * span
    if band_lo.size:
        low = max(min(band_lo.min(), low), lo - 0.5 * span)
        high = min(max(band_hi.max(), high), hi + 0.5 * span)
    ax.set_ylim(low, high)


def condition_curves(aggs: dict[str, dict], names: list[str], labels: dict[str, str], path: Path,
                     cols: int = 3) -> Path:
    """One panel per metric, one line per condition (its mean over the units, a light 95 % band), generation
    on the x axis, and one legend below the panels naming each condition by `labels`; `aggs`: {condition:
    `stats.aggregate` of its pooled rows}. Sized to be read at the width of a page."""
    cols = min(cols, len(names))
    nrows = math.ceil(len(names) / cols)
    width, height = 3.4, 2.7
    chars = max([len(labels[key]) for key in aggs] or [1])
    W = max(width * cols, 0.8 + 0.075 * chars)  # as wide as the longest label in the legend
    ncol = max(1, min(len(aggs), int(W / (0.6 + 0.075 * chars))))
    legend_h = 0.25 * math.ceil(len(aggs) / ncol) + 0.2
    H = height * nrows + legend_h + 0.3
    with plt.rc_context({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 10}):
        fig, axes = plt.subplots(nrows, cols, figsize=(W, H), squeeze=False)
        fig.subplots_adjust(left=0.65 / W, right=1 - 0.15 / W, top=1 - 0.35 / H, bottom=(legend_h + 0.5) / H,
                            wspace=0.75 / (width - 0.75), hspace=0.8 / (height - 0.8))
        handles = {}
        for ax, name in zip(axes.flat, names):
            means, lows, highs = [], [], []
            for i, (key, agg_by_metric) in enumerate(aggs.items()):
                agg = agg_by_metric.get(name)
                if not agg:
                    continue
                gens = sorted(agg)
                stats = np.array([mean_ci(agg[g]) for g in gens])
                style = dict(color=plt.get_cmap("tab10")(i % 10), marker=MARKERS[i % len(MARKERS)])
                (line,) = ax.plot(gens, stats[:, 0], ms=4 if len(gens) <= 50 else 0, lw=1.8, label=labels[key],
                                  **style)
                handles.setdefault(key, line)
                ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=style["color"],
                                alpha=0.12, lw=0)
                means.append(stats[:, 0])
                lows.append(stats[:, 0] - stats[:, 1])
                highs.append(stats[:, 0] + stats[:, 1])
            if means:
                _clip_to_means(ax, means, lows, highs)
            ax.set_title(name)
            ax.set_xlabel("generation")
            last = max((g for agg in aggs.values() for g in agg.get(name, {})), default=0)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5 if last >= 1000 else 10, integer=True))  # 4-digit labels
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.legend(list(handles.values()), [labels[key] for key in handles], loc="lower center", ncol=ncol,
                   frameon=False, bbox_to_anchor=(0.5, 0.05 / H))
    return save(fig, path)


def heatmaps(panels: dict[str, np.ndarray], rows: list[str], cols: list[str], ylabel: str, xlabel: str,
             path: Path) -> Path:
    """One heatmap per entry of `panels` (title -> [rows, cols] values, nan: no condition), each cell
    annotated with its value; up to three side by side, more two to a row (readable at a page's width)."""
    n = len(panels)
    ncols = n if n <= 3 else 2
    nrows = math.ceil(n / ncols)
    width, height = 1.6 + 0.9 * len(cols), 1.3 + 0.5 * len(rows)
    with plt.rc_context({"font.size": 10, "axes.titlesize": 11}):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        for ax, (title, grid) in zip(axes.flat, panels.items()):
            image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
            finite = grid[np.isfinite(grid)]
            middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
            for (r, c), v in np.ndenumerate(grid):
                ax.text(c, r, f"{v:.3g}" if np.isfinite(v) else "—", ha="center", va="center", fontsize=9,
                        color="black" if np.isfinite(v) and v > middle else "white" if np.isfinite(v) else "0.4")
            ax.set_xticks(range(len(cols)), cols)
            ax.set_yticks(range(len(rows)), rows)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            fig.colorbar(image, ax=ax, shrink=0.8)
        fig.tight_layout()
    return save(fig, path)


def provenance(shares: dict[int, dict[str, float]], depths: dict[int, float], path: Path) -> Path:
    """Left: the training set's composition by origin per generation (stacked shares: human, then the samples of
    each generation). Right: the mean synthetic depth of each generation's training set."""
    gens = sorted(shares)
    origins = sorted({o for s in shares.values() for o in s}, key=lambda o: -1 if o == "human" else int(o[4:]))
    last = max([int(o[4:]) for o in origins if o != "human"], default=0)
    cmap = plt.get_cmap("viridis")
    colors = ["0.55" if o == "human" else cmap(int(o[4:]) / max(last, 1)) for o in origins]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    stack = np.array([[shares[g].get(o, 0.0) for g in gens] for o in origins])
    ax.stackplot(gens, stack, labels=[o.replace("_", " ") for o in origins], colors=colors, step=None)
    ax.set_xlabel("generation")
    ax.set_ylabel("share of the training set")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1), ncol=1 + len(origins) // 16)
    ax2.plot(gens, [depths[g] for g in gens], marker="o" if len(gens) <= 50 else None, ms=3, color="C3")
    ax2.set_xlabel("generation")
    ax2.set_ylabel("mean synthetic depth")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return save(fig, path)
