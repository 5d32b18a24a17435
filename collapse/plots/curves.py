"""Curves over generations: one run's metrics with their replicates, the human reference, ratio guides and theory
(`metric_curves`); several conditions' means with their intervals (`condition_curves`)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from collapse.stats import aggregate, mean_ci  # noqa: E402
from collapse.plots import style  # noqa: E402


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
    95 % band; a panel with a single metric also shows the first `style.MAX_LINES` replicates as thin grey lines,
    one with several names them above it. Each panel is read against its metric's y = 1 (ratio) or y = 0
    (difference) guide (`style.axis`), its human value (`reference`: metric -> value, dotted) and its closed form
    (`theory`: metric -> expectation at generations 0, 1, ..., dashed); metrics in `log_y` are drawn on a log
    style.axis where every value is positive. One legend at the top says what the lines are. Beyond 50 generations
    the means are drawn without markers."""
    agg, reps = aggregate(rows), _by_replicate(rows)
    reference, theory = reference or {}, theory or {}
    fig, axes = style.grid(len(panels), 4, 3.6, 2.7, top=0.55)
    kinds = set()  # which of the shared artists some panel draws, for the legend
    for ax, (title, names) in zip(axes, panels.items()):
        metric_handles = []
        for i, (name, label) in enumerate(zip(names, style.short_labels(names))):
            color = "C0" if len(names) == 1 else f"C{i}"
            gens = sorted(agg.get(name, {}))
            if len(names) == 1:
                for x, y in list(reps.get(name, {}).values())[:style.MAX_LINES]:
                    ax.plot(x, y, color="0.7", lw=0.8)
                    kinds.add("replicates")
            if name in reference:
                ax.axhline(reference[name], **{**style.HUMAN, "color": "k" if len(names) == 1 else color}, label="human")
                kinds.add("human")
            if name in theory:  # over the generations drawn
                expected = theory[name][:gens[-1] + 1] if gens else theory[name]
                ax.plot(np.arange(len(expected)), expected, **style.THEORY, zorder=3, label="closed form")
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
        guide = style.axis(names[0]).guide
        if guide is not None:
            ax.axhline(guide, **style.GUIDE, zorder=1, label=f"y = {guide:g}")
            kinds.add(f"y = {guide:g}")
        values = np.array([v for n in names for _, y in reps.get(n, {}).values() for v in y])
        if set(names) & set(log_y) and values.size and (values > 0).all():
            ax.set_yscale("log", nonpositive="clip")
        ax.set_title(title, fontsize=9, pad=14 if len(metric_handles) > 1 else 4)
        if len(metric_handles) > 1:  # between the title and the axes
            ax.legend(handles=metric_handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(metric_handles),
                      fontsize=6, frameon=False, handlelength=1.2, columnspacing=0.8, borderaxespad=0.1)
        ax.set_xlabel("generation", fontsize=8)
        ax.set_ylabel(style.axis(names[0]).label, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    shared = {"mean": Line2D([], [], color="C0", marker="o", ms=3, label="mean ± 95 % band"),
              "replicates": Line2D([], [], color="0.7", lw=0.8, label="replicates"),
              "human": Line2D([], [], **style.HUMAN, label="human"),
              "closed form": Line2D([], [], **style.THEORY, label="closed form"),
              "y = 1": Line2D([], [], **style.GUIDE, label="y = 1"), "y = 0": Line2D([], [], **style.GUIDE, label="y = 0")}
    style.top_legend(fig, [h for k, h in shared.items() if k in kinds])
    return style.save(fig, path)


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
    on the x style.axis, the metric's unit on the y style.axis and its y = 1 (ratio) or y = 0 (difference) guide, and one
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
                look = _condition_style(i, len(aggs), len(gens))
                (line,) = ax.plot(dodge(curves, gens, stats[:, 0], len(aggs)), stats[:, 0], label=shown[key], **look)
                curves.append((gens, stats[:, 0]))
                handles.setdefault(key, line)
                means.append(stats[:, 0])
                if n.get(key) != 1:
                    ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=look["color"],
                                    alpha=0.12, lw=0)
                    lows.append(stats[:, 0] - stats[:, 1])
                    highs.append(stats[:, 0] + stats[:, 1])
            if means:
                _clip_to_means(ax, means, lows or [np.array([])], highs or [np.array([])])
            if style.axis(name).guide is not None:
                ax.axhline(style.axis(name).guide, **style.GUIDE, zorder=1)
            ax.set_title(name)
            ax.set_xlabel("generation")
            ax.set_ylabel(style.axis(name).label)
            last = max((g for agg in aggs.values() for g in agg.get(name, {})), default=0)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=10 if last < 100 else 6 if last < 1000 else 5, integer=True))
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.legend(list(handles.values()), [shown[key] for key in handles], loc="lower center", ncol=ncol,
                   frameon=False, bbox_to_anchor=(0.5, 0.05 / H))
    return style.save(fig, path)
