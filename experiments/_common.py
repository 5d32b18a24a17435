"""Shared by the experiment scripts: a study config, replicate bands, small PNGs under results/."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from collapse.config import Config  # noqa: E402
from collapse.regimes import ReplaceConfig  # noqa: E402
from collapse.stats import mean_ci  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"


def study(model, regime=ReplaceConfig(), generations: int = 100, replicates: int = 1000, seed: int = 0) -> Config:
    return Config(model=model, regime=regime, generations=generations, replicates=replicates, seed=seed,
                  compilation_cache="")


def band(ax, x, values_GR, label: str, color: str) -> None:
    """Mean over replicates (axis 1) with its 95 % t-interval."""
    mean, half = mean_ci(values_GR, axis=1)
    ax.plot(x, mean, color=color, lw=1.5, label=label)
    ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.25, lw=0)


def theory(ax, x, y, label: str = "closed form", style: str = "k--") -> None:
    ax.plot(x, y, style, lw=1, label=label)


def figure(rows: int, cols: int):
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False)
    return fig, axes.ravel()


def save(fig, name: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path.relative_to(RESULTS.parent)}")
    return path
