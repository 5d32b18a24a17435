"""Matplotlib figures (Agg backend, files only)."""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
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


class Axis(NamedTuple):
    """How a metric's values read: the y label (its unit) and its kind, `ratio` (1: no change, a dashed y = 1
    guide), `difference` (0: no change, a y = 0 guide), `probability` (a share, 0 to 1) or `absolute`."""

    label: str
    kind: str = "absolute"

    @property
    def guide(self) -> float | None:
        return {"ratio": 1.0, "difference": 0.0}.get(self.kind)


# What each metric is measured in (docs/metrics.md; the analytic families' modules). A key is a metric name or
# the start of several (`distinct_` for distinct_1..4); `axis` reads `_true` and `_model` variants as the base.
AXES = {
    "ppl_human_test": Axis("perplexity"), "ppl_gen0": Axis("perplexity"), "ppl_self": Axis("perplexity"),
    "ppl_self_ratio": Axis("ppl_self / ppl_gen0", "ratio"), "kl_true": Axis("nats / token"),
    "true_nll_samples": Axis("nats / token"),
    "distinct_": Axis("distinct / all n-grams", "probability"),
    "unique_n_fixed": Axis("distinct / sampled n-grams", "probability"),
    "self_bleu4": Axis("BLEU-4 (0 to 1)", "probability"), "unigram_entropy": Axis("bits"),
    "bigram_entropy": Axis("bits"), "compression_ratio": Axis("bytes / gzip bytes"),
    "rep_": Axis("repeated n-grams (share)", "probability"), "dup_frac": Axis("share of sequences", "probability"),
    "semantic_distance": Axis("cosine distance"), "vendi": Axis("effective sequences"),
    "head_": Axis("token share / reference", "ratio"), "torso_": Axis("token share / reference", "ratio"),
    "tail_": Axis("token share / reference", "ratio"), "survival": Axis("share of types", "probability"),
    "kl_unigram": Axis("nats"), "zipf_exponent": Axis("exponent s"),
    "teacher_gap_kl_true": Axis("Δ nats / token", "difference"),
    "teacher_gap_ppl_human_test": Axis("Δ perplexity", "difference"),
    "curate_acceptance": Axis("kept / drawn", "probability"), "curate_drawn_per_kept": Axis("drawn / kept"),
    "curate_score_mean": Axis("mean score"), "curate_pass_rate": Axis("share passing", "probability"),
    "curate_detector_accuracy": Axis("balanced accuracy", "probability"),
    "curate_detector_used": Axis("share of classifiers", "probability"),
    "curate_ess": Axis("ESS / candidates", "probability"), "curate_unique_kept": Axis("distinct / kept", "probability"),
    "curate_corrected_fraction": Axis("share of tokens", "probability"),
    "var_ratio": Axis("tr Σ / tr Σ₀", "ratio"), "det_ratio": Axis("det Σ / det Σ₀", "ratio"),
    "mean_sq_dist": Axis("‖μ − μ₀‖²"), "w2_true": Axis("W₂ distance"), "l2_true": Axis("L2 distance"),
    "mean_": Axis("first coordinate"), "var_": Axis("tr Σₖ / d"), "weight_": Axis("weight", "probability"),
    "support": Axis("symbols"), "missing_mass": Axis("true mass", "probability"),
    "tv_true": Axis("total variation", "probability"), "test_error": Axis(r"$\|\hat w - w^*\|^2$"),
}


def axis(name: str) -> Axis:
    """The `AXES` entry of a metric: its own, else that of its name without `_true` / `_model`, else of the
    longest key it starts with; unknown metrics read as absolute, unlabelled."""
    base = name.removesuffix("_true").removesuffix("_model")
    for key in (name, base):
        if key in AXES:
            return AXES[key]
    starts = [key for key in AXES if base.startswith(key)]
    return AXES[max(starts, key=len)] if starts else Axis("")


def short_labels(names: list[str]) -> list[str]:
    """Legend labels for the metrics of one panel: their names without the part they share (head_mass_ratio,
    tail_mass_ratio: head, tail); a name that is all shared part keeps its name."""
    if len(names) < 2:
        return list(names)
    head, tail = os.path.commonprefix(names), os.path.commonprefix([n[::-1] for n in names])[::-1]
    head, tail = head[:head.rfind("_") + 1], tail[tail.find("_"):] if "_" in tail else ""  # whole words only
    cut = [n[len(head):len(n) - len(tail)].strip("_") for n in names]
    return [c or n for c, n in zip(cut, names)] if len(set(cut)) == len(cut) else list(names)


def _grid(n: int, cols: int, width: float, height: float, top: float = 0.35, **kw):
    """`n` panels of `width` x `height` inches in rows of at most `cols`, as even as they go (6 of 5: two rows
    of 3), with fixed margins in inches (`top`: above the first row; matplotlib's tight_layout costs a full
    extra drawing pass, which dominated the per-generation report)."""
    rows = math.ceil(n / cols)
    cols = math.ceil(n / rows)
    W, H = max(width * cols, 5.0), height * rows + top + 0.05  # one panel: wide enough for the top legend
    fig, axes = plt.subplots(rows, cols, figsize=(W, H), squeeze=False, **kw)
    fig.subplots_adjust(left=0.8 / W, right=1 - 0.15 / W, bottom=0.55 / H, top=1 - top / H,
                        wspace=0.9 / (width - 0.9), hspace=0.95 / (height - 0.95))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _top_legend(fig, handles: list) -> None:
    """One legend in a row along the figure's top margin (`_grid`'s `top`), off the data."""
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize=8,
                   bbox_to_anchor=(0.5, 1 - 0.02 / fig.get_figheight()), borderaxespad=0.2)


MAX_LINES = 20  # replicates drawn as thin lines
HUMAN = dict(color="k", ls=":", lw=1.4)  # the human reference row
GUIDE = dict(color="0.45", ls=(0, (5, 3)), lw=0.8)  # y = 1 on ratios, y = 0 on differences
THEORY = dict(color="k", ls="--", lw=1.2)  # a closed form


def _by_replicate(rows: list[dict]) -> dict[str, dict]:
    """{metric: {replicate: (generations, values)}} of the defined values, in generation order."""
    out: dict[str, dict] = {}
    for row in rows:
        if row["value"] is not None:
            out.setdefault(row["metric"], {}).setdefault(row["replicate"], []).append((row["generation"], row["value"]))
    return {name: {r: tuple(zip(*sorted(s))) for r, s in reps.items()} for name, reps in out.items()}


def metric_curves(rows: list[dict], panels: dict[str, list[str]], path: Path,
                  reference: dict[str, float] | None = None, theory: dict[str, np.ndarray] | None = None,
                  log_y: set[str] = frozenset()) -> Path:
    """One panel per entry of `panels` (title -> metric names): each metric's mean across replicates with its
    95 % band; a panel with a single metric also shows the first `MAX_LINES` replicates as thin grey lines,
    one with several names them above it. Each panel is read against its metric's y = 1 (ratio) or y = 0
    (difference) guide (`axis`), its human value (`reference`: metric -> value, dotted) and its closed form
    (`theory`: metric -> expectation at generations 0, 1, ..., dashed); metrics in `log_y` are drawn on a log
    axis where every value is positive. One legend at the top says what the lines are. Beyond 50 generations
    the means are drawn without markers."""
    agg, reps = aggregate(rows), _by_replicate(rows)
    reference, theory = reference or {}, theory or {}
    fig, axes = _grid(len(panels), 4, 3.6, 2.7, top=0.55)
    kinds = set()  # which of the shared artists some panel draws, for the legend
    for ax, (title, names) in zip(axes, panels.items()):
        metric_handles = []
        for i, (name, label) in enumerate(zip(names, short_labels(names))):
            color = "C0" if len(names) == 1 else f"C{i}"
            gens = sorted(agg.get(name, {}))
            if len(names) == 1:
                for x, y in list(reps.get(name, {}).values())[:MAX_LINES]:
                    ax.plot(x, y, color="0.7", lw=0.8)
                    kinds.add("replicates")
            if name in reference:
                ax.axhline(reference[name], **{**HUMAN, "color": "k" if len(names) == 1 else color}, label="human")
                kinds.add("human")
            if name in theory:  # over the generations drawn
                expected = theory[name][:gens[-1] + 1] if gens else theory[name]
                ax.plot(np.arange(len(expected)), expected, **THEORY, zorder=3, label="closed form")
                kinds.add("closed form")
            if not gens:  # undefined in every generation (e.g. zipf_exponent of a one-type corpus)
                continue
            stats = np.array([mean_ci(agg[name][g]) for g in gens])
            (line,) = ax.plot(gens, stats[:, 0], marker="o" if len(gens) <= 50 else None, ms=3, color=color,
                              label=label, zorder=2.5)
            metric_handles.append(line)
            kinds.add("mean")
            if np.isfinite(stats[:, 1]).any():
                ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=color, alpha=0.2)
        guide = axis(names[0]).guide
        if guide is not None:
            ax.axhline(guide, **GUIDE, zorder=1, label=f"y = {guide:g}")
            kinds.add(f"y = {guide:g}")
        values = np.array([v for n in names for _, y in reps.get(n, {}).values() for v in y])
        if set(names) & set(log_y) and values.size and (values > 0).all():
            ax.set_yscale("log", nonpositive="clip")
        ax.set_title(title, fontsize=9, pad=14 if len(metric_handles) > 1 else 4)
        if len(metric_handles) > 1:  # between the title and the axes
            ax.legend(handles=metric_handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(metric_handles),
                      fontsize=6, frameon=False, handlelength=1.2, columnspacing=0.8, borderaxespad=0.1)
        ax.set_xlabel("generation", fontsize=8)
        ax.set_ylabel(axis(names[0]).label, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    shared = {"mean": Line2D([], [], color="C0", marker="o", ms=3, label="mean ± 95 % band"),
              "replicates": Line2D([], [], color="0.7", lw=0.8, label="replicates"),
              "human": Line2D([], [], **HUMAN, label="human"),
              "closed form": Line2D([], [], **THEORY, label="closed form"),
              "y = 1": Line2D([], [], **GUIDE, label="y = 1"), "y = 0": Line2D([], [], **GUIDE, label="y = 0")}
    _top_legend(fig, [h for k, h in shared.items() if k in kinds])
    return save(fig, path)


def _shared_bins(groups: list[np.ndarray], bins: int, log_x: bool) -> np.ndarray:
    """`bins` + 1 edges over the finite (and, on a log axis, positive) values of all `groups`."""
    pooled = np.concatenate(groups)
    pooled = pooled[np.isfinite(pooled) & ((pooled > 0) if log_x else True)]
    lo, hi = pooled.min(), pooled.max()
    hi = hi if hi > lo else lo + 1
    return np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(lo, hi, bins + 1)


def _share_hist(ax, x: np.ndarray, edges: np.ndarray, **style) -> None:
    """The share of `x` in each bin (values outside the edges, nan and inf in none)."""
    ax.hist(x, edges, weights=np.full(len(x), 1 / max(len(x), 1)), **style)


def histograms(values: dict[int, np.ndarray], path: Path, xlabel: str, reference: tuple[str, np.ndarray] | None = None,
               log_x: bool = False, bins: int = 50) -> Path:
    """One panel per generation on shared axes and bins (Shumailov et al.'s per-sequence figure): the share of
    sequences per bin, replicates pooled; `reference` (label, values) is outlined in every panel."""
    edges = _shared_bins([*values.values(), *([] if reference is None else [reference[1]])], bins, log_x)
    fig, axes = _grid(len(values), 5, 3.0, 2.4, top=0.55, sharex=True, sharey=True)
    for ax, (g, x) in zip(axes, sorted(values.items())):
        _share_hist(ax, x, edges, color="C0", alpha=0.8, label="samples")
        if reference is not None:
            _share_hist(ax, reference[1], edges, histtype="step", color="k", lw=1, label=reference[0])
        ax.set_title(f"generation {g}", fontsize=9)
        if log_x:
            ax.set_xscale("log")
    axes[0].set_ylabel("share of sequences")
    handles, _ = axes[0].get_legend_handles_labels()
    _top_legend(fig, handles)
    fig.supxlabel(xlabel, fontsize=9)
    return save(fig, path)


def before_after(before: dict[int, np.ndarray], after: dict[int, np.ndarray], path: Path, xlabel: str,
                 bins: int = 40) -> Path:
    """One panel per generation on shared bins: the share of candidates per bin before a selection (filled)
    and of the rows it kept (outlined), replicates pooled; the legend in the top margin."""
    edges = _shared_bins([*before.values(), *after.values()], bins, log_x=False)
    fig, axes = _grid(len(before), 5, 3.0, 2.4, top=0.55, sharex=True, sharey=True)
    for ax, g in zip(axes, sorted(before)):
        _share_hist(ax, before[g], edges, color="C0", alpha=0.6, label="candidates")
        if g in after:
            _share_hist(ax, after[g], edges, histtype="step", color="k", lw=1.2, label="kept")
        ax.set_title(f"generation {g}", fontsize=9)
    axes[0].set_ylabel("share")
    handles, _ = axes[0].get_legend_handles_labels()
    _top_legend(fig, handles)
    fig.supxlabel(xlabel, fontsize=9)
    return save(fig, path)


def _axes_at(fig, left: float, bottom: float, width: float, height: float):
    """Axes at a rectangle given in inches (fixed layout: no tight_layout pass)."""
    W, H = fig.get_size_inches()
    return fig.add_axes((left / W, bottom / H, width / W, height / H))


def rank_frequency(counts: dict[int, np.ndarray], human_V: np.ndarray, path: Path, truth_V: np.ndarray | None = None,
                   last_seen_RV: np.ndarray | None = None) -> Path:
    """Left: rank-frequency curves (log-log) of the generations in `counts`, coloured in generation order (a
    sequential colormap), the human train split (orange) and the truth (black dashed, on top); the legend beside
    the axes. Right: the last generation whose samples held each type, against its human frequency rank."""
    fig = plt.figure(figsize=(12, 4.2))
    ax, ax2 = _axes_at(fig, 0.75, 0.6, 4.6, 3.4), _axes_at(fig, 7.35, 0.6, 4.45, 3.4)
    cmap, gens = plt.get_cmap("viridis"), sorted(counts)
    for i, g in enumerate(gens):
        c_V = counts[g]
        f = np.sort(c_V[c_V > 0])[::-1] / c_V.sum()
        ax.loglog(np.arange(1, len(f) + 1), f, color=cmap(0.85 * i / max(len(gens) - 1, 1)), lw=1.2, label=f"gen {g}")
    for label, ref_V, style in (("human train", human_V, dict(color="tab:orange", lw=1.8, zorder=4)),
                                ("truth", truth_V, dict(color="k", ls="--", lw=1.4, zorder=5))):
        if ref_V is not None:
            f = np.sort(ref_V[ref_V > 0])[::-1] / ref_V.sum()
            ax.loglog(np.arange(1, len(f) + 1), f, label=label, **style)
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


def _condition_style(i: int, n: int, points: int) -> dict:
    """Line style of the i-th of n conditions: its colour and open marker, drawn thinner and smaller than the
    ones before it (lines that coincide stay visible, nested); past 50 generations a few markers, each
    condition's at other generations."""
    step = max(1, math.ceil(points / 8)) if points > 50 else 1
    return dict(color=plt.get_cmap("tab10")(i % 10), marker=MARKERS[i % len(MARKERS)], mfc="none",
                lw=2.2 - 0.8 * i / max(n - 1, 1), ms=6.5 - 2 * i / max(n - 1, 1),
                markevery=(i * step // max(n, 1) % step, step))


def dodge(curves: list[tuple[list[int], np.ndarray]], gens: list[int], means: np.ndarray, n: int) -> np.ndarray:
    """The x positions of a curve: `gens`, shifted right for each curve already drawn (`curves`: (generations,
    means)) that it coincides with, so identical conditions stand side by side rather than one hidden under
    another; by 1/80 of the generations spanned, at most 0.6 of a step between points over all `n` conditions."""
    same = sum(g == gens and np.allclose(m, means, rtol=1e-9, atol=1e-12, equal_nan=True) for g, m in curves)
    span = gens[-1] - gens[0]
    step = span / (len(gens) - 1) if span else 1
    return np.asarray(gens) + same * min(max(span, 8) / 80, 0.6 * step / n)


def condition_curves(aggs: dict[str, dict], names: list[str], labels: dict[str, str], path: Path,
                     cols: int = 3, n: dict[str, int] | None = None) -> Path:
    """One panel per metric, one line per condition (its mean over the units, a light 95 % band), generation
    on the x axis, the metric's unit on the y axis and its y = 1 (ratio) or y = 0 (difference) guide, and one
    legend below the panels naming each condition by `labels`; `aggs`: {condition: `stats.aggregate` of its
    pooled rows}, `n`: {condition: its units}; a condition of one unit says so in the legend and has no band;
    conditions whose curves coincide are drawn side by side (`dodge`). Sized to be read at the width of a page."""
    n = n or {}
    shown = {key: labels[key] + (" (n = 1)" if n.get(key) == 1 else "") for key in aggs}
    cols = min(cols, len(names))
    nrows = math.ceil(len(names) / cols)
    width, height = 3.5, 2.7
    chars = max([len(label) for label in shown.values()] or [1])
    W = max(width * cols, 0.8 + 0.075 * chars)  # as wide as the longest label in the legend
    ncol = max(1, min(len(aggs), int(W / (0.6 + 0.075 * chars))))
    legend_h = 0.25 * math.ceil(len(aggs) / ncol) + 0.2
    H = height * nrows + legend_h + 0.3
    with plt.rc_context({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 10}):
        fig, axes = plt.subplots(nrows, cols, figsize=(W, H), squeeze=False)
        fig.subplots_adjust(left=0.9 / W, right=1 - 0.15 / W, top=1 - 0.35 / H, bottom=(legend_h + 0.5) / H,
                            wspace=1.0 / (width - 1.0), hspace=0.8 / (height - 0.8))
        handles = {}
        for ax, name in zip(axes.flat, names):
            means, lows, highs, curves = [], [], [], []
            for i, (key, agg_by_metric) in enumerate(aggs.items()):
                agg = agg_by_metric.get(name)
                if not agg:
                    continue
                gens = sorted(agg)
                stats = np.array([mean_ci(agg[g]) for g in gens])
                style = _condition_style(i, len(aggs), len(gens))
                (line,) = ax.plot(dodge(curves, gens, stats[:, 0], len(aggs)), stats[:, 0], label=shown[key], **style)
                curves.append((gens, stats[:, 0]))
                handles.setdefault(key, line)
                means.append(stats[:, 0])
                if n.get(key) != 1:
                    ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=style["color"],
                                    alpha=0.12, lw=0)
                    lows.append(stats[:, 0] - stats[:, 1])
                    highs.append(stats[:, 0] + stats[:, 1])
            if means:
                _clip_to_means(ax, means, lows or [np.array([])], highs or [np.array([])])
            if axis(name).guide is not None:
                ax.axhline(axis(name).guide, **GUIDE, zorder=1)
            ax.set_title(name)
            ax.set_xlabel("generation")
            ax.set_ylabel(axis(name).label)
            last = max((g for agg in aggs.values() for g in agg.get(name, {})), default=0)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=10 if last < 100 else 6 if last < 1000 else 5, integer=True))
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.legend(list(handles.values()), [shown[key] for key in handles], loc="lower center", ncol=ncol,
                   frameon=False, bbox_to_anchor=(0.5, 0.05 / H))
    return save(fig, path)


def _wrap(text: str, inches: float, points: float) -> str:
    """`text` in lines of at most `inches` at a font of `points`: where too long, broken after its commas
    first ("metric,\ngeneration 7"), then at spaces."""
    width = max(8, int(inches / (0.55 * points / 72)))
    if len(text) <= width:
        return text
    return ",\n".join(textwrap.fill(part, width) for part in text.split(", "))


def heatmaps(panels: dict[str, np.ndarray], rows: list[str], cols: list[str], ylabel: str, xlabel: str,
             path: Path, units: dict[str, str] | None = None) -> Path:
    """One heatmap per entry of `panels` (title -> [rows, cols] values, nan: no condition), each cell
    annotated with its value, its colorbar labelled by `units` (title -> unit); up to three side by side, more
    two to a row. Laid out in inches from the labels: titles wrapped to their panel, column labels turned when
    long, every panel as wide as its row labels need, so nothing is cut or overlaps."""
    n = len(panels)
    ncols = n if n <= 3 else 2
    nrows = math.ceil(n / ncols)
    char = 0.55 * 10 / 72  # inches per character at 10 points
    turn = max(map(len, cols)) * char > 0.85  # column labels wider than a cell: turned by 30 degrees
    cell_w = 0.9
    panel_w, panel_h = cell_w * len(cols), max(0.5 * len(rows), 1.0)
    ticks_w = max(map(len, rows)) * char + 0.15
    left = 0.35 + ticks_w  # y label and row labels
    right = 1.1  # colorbar, its ticks and unit
    tick_h = (0.5 * max(map(len, cols)) * char + 0.25) if turn else 0.3
    titles = {t: _wrap(t, panel_w + 0.6, 11) for t in panels}
    title_h = 0.22 * max(t.count("\n") + 1 for t in titles.values()) + 0.2
    block_w, block_h = left + panel_w + right, title_h + panel_h + tick_h + 0.45
    fig = plt.figure(figsize=(block_w * ncols, block_h * nrows))
    with plt.rc_context({"font.size": 10, "axes.titlesize": 11}):
        for k, (title, grid) in enumerate(panels.items()):
            x0, y0 = (k % ncols) * block_w + left, (nrows - 1 - k // ncols) * block_h + tick_h + 0.45
            ax = _axes_at(fig, x0, y0, panel_w, panel_h)
            image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
            finite = grid[np.isfinite(grid)]
            middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
            for (r, c), v in np.ndenumerate(grid):
                ax.text(c, r, f"{v:.3g}" if np.isfinite(v) else "—", ha="center", va="center", fontsize=9,
                        color="black" if np.isfinite(v) and v > middle else "white" if np.isfinite(v) else "0.4")
            ax.set_xticks(range(len(cols)), cols, rotation=30 if turn else 0, ha="right" if turn else "center",
                          rotation_mode="anchor")
            ax.set_yticks(range(len(rows)), rows)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(titles[title])
            bar = fig.colorbar(image, cax=_axes_at(fig, x0 + panel_w + 0.12, y0, 0.12, panel_h))
            if units and units.get(title):
                bar.set_label(units[title], fontsize=9)
    return save(fig, path)


MAX_ORIGINS = 12  # origins named in the provenance legend; more get a colorbar


def provenance(shares: dict[int, dict[str, float]], depths: dict[int, float], path: Path) -> Path:
    """Left: the training set's composition by origin per generation, one stacked bar each (human at the bottom,
    then the samples of each generation, coloured in generation order; bars, not areas, since a regime such as
    replace changes the composition at once). Right: the mean synthetic depth of each generation's training
    set. Legend (or, past `MAX_ORIGINS` origins, a colorbar) beside the bars."""
    gens = sorted(shares)
    origins = sorted({o for s in shares.values() for o in s}, key=lambda o: -1 if o == "human" else int(o[4:]))
    last = max([int(o[4:]) for o in origins if o != "human"], default=0)
    cmap = plt.get_cmap("viridis")
    color = lambda o: "0.55" if o == "human" else cmap(int(o[4:]) / max(last, 1))  # noqa: E731
    fig = plt.figure(figsize=(11, 3.8))
    ax, ax2 = _axes_at(fig, 0.75, 0.6, 4.4, 3.0), _axes_at(fig, 7.0, 0.6, 3.8, 3.0)
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
        bar = fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(0, last), cmap), cax=_axes_at(fig, 5.3, 0.6, 0.12, 3.0))
        bar.set_label("samples of generation (grey: human)", fontsize=7)
    ax2.plot(gens, [depths[g] for g in gens], marker="o" if len(gens) <= 50 else None, ms=3, color="C3")
    ax2.set_xlabel("generation")
    ax2.set_ylabel("mean synthetic depth (generations)")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    return save(fig, path)
