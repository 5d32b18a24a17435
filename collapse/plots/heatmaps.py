"""Heatmaps of the headline metrics over two config columns, laid out from their labels."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collapse.plots import style  # noqa: E402


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
            ax = style.axes_at(fig, x0, y0, panel_w, panel_h)
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
            bar = fig.colorbar(image, cax=style.axes_at(fig, x0 + panel_w + 0.12, y0, 0.12, panel_h))
            if units and units.get(title):
                bar.set_label(units[title], fontsize=9)
    return style.save(fig, path)
