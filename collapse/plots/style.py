"""Matplotlib figures (Agg backend, files only): the shared parts — the one writer of a figure (`save`), what each
metric is measured in (`AXES`, `axis`), the panel grid and the styles every figure uses."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    "recovery_": Axis("share of the collapse undone"),
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
    "closed_book_prob": Axis("p(true value | entity relation)", "probability"),
    "closed_book_acc": Axis("share of facts", "probability"), "fact_coverage": Axis("share of facts", "probability"),
    "hallucination_rate": Axis("false / statements", "probability"),
    "factual_precision": Axis("true / statements", "probability"), "fact_statement_rate": Axis("statements / token"),
    "error_repeat": Axis("share of false statements", "probability"),
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


def grid(n: int, cols: int, width: float, height: float, top: float = 0.35, **kw):
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


def top_legend(fig, handles: list) -> None:
    """One legend in a row along the figure's top margin (`grid`'s `top`), off the data."""
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, fontsize=8,
                   bbox_to_anchor=(0.5, 1 - 0.02 / fig.get_figheight()), borderaxespad=0.2)


def axes_at(fig, left: float, bottom: float, width: float, height: float):
    """Axes at a rectangle given in inches (fixed layout: no tight_layout pass)."""
    W, H = fig.get_size_inches()
    return fig.add_axes((left / W, bottom / H, width / W, height / H))


MAX_LINES = 20  # replicates drawn as thin lines
HUMAN = dict(color="k", ls=":", lw=1.4)  # the human reference row
GUIDE = dict(color="0.45", ls=(0, (5, 3)), lw=0.8)  # y = 1 on ratios, y = 0 on differences
THEORY = dict(color="k", ls="--", lw=1.2)  # a closed form
