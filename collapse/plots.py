"""Matplotlib figures (Agg backend, files only)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collapse.report import aggregate, mean_ci  # noqa: E402
from collapse.store import atomic_write  # noqa: E402


def save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def metric_curves(rows: list[dict], names: list[str], path: Path) -> Path:
    """One panel per metric: replicates as thin lines, their mean with a 95 % band."""
    agg = aggregate(rows)
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        gens = sorted(agg[name])
        stats = np.array([mean_ci(agg[name][g]) for g in gens])
        by_rep = {}
        for row in rows:
            if row["metric"] == name:
                by_rep.setdefault(row["replicate"], []).append((row["generation"], row["value"]))
        for series in by_rep.values():
            x, y = zip(*sorted(series))
            ax.plot(x, y, color="0.7", lw=0.8)
        ax.plot(gens, stats[:, 0], marker="o", color="C0")
        if len(by_rep) > 1:
            ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color="C0", alpha=0.2)
        ax.set_title(name)
        ax.set_xlabel("generation")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return save(fig, path)


def group_curves(rows_by_group: dict[str, list[dict]], names: list[str], path: Path) -> Path:
    """One panel per metric, one line per group (mean over its seeds and replicates) with a 95 % band."""
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for i, (label, rows) in enumerate(rows_by_group.items()):
            agg = aggregate([r for r in rows if r["metric"] == name]).get(name)
            if not agg:
                continue
            gens = sorted(agg)
            stats = np.array([mean_ci(agg[g]) for g in gens])
            ax.plot(gens, stats[:, 0], marker="o", ms=3, color=f"C{i % 10}", label=label)
            ax.fill_between(gens, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=f"C{i % 10}",
                            alpha=0.15)
        ax.set_title(name)
        ax.set_xlabel("generation")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize="small",
               bbox_to_anchor=(0.5, -0.02 - 0.03 * math.ceil(len(labels) / 3)))
    fig.tight_layout()
    return save(fig, path)
