"""Figures from tiny synthetic data: PNGs of the size the layout gives, undefined values left out."""

import matplotlib.image
import numpy as np
import pytest

from collapse import plots

DPI = 110


def _size(path):
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


@pytest.fixture
def drawn(monkeypatch):
    """The figures `plots` saves, captured before they are closed."""
    figures, real = [], plots.save

    def save(fig, path):
        figures.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "save", save)
    return figures


def test_metric_curves_size_and_undefined_values_left_out(tmp_path, drawn):
    rows = [{"generation": g, "replicate": r, "metric": m, "value": None if (m, g) == ("a", 1) else g + r + 0.5}
            for m in ("a", "b") for g in range(3) for r in range(2)]
    path = plots.metric_curves(rows, {"a": ["a"], "b and b": ["b"]}, tmp_path / "f" / "curves.png")
    assert path.exists() and _size(path) == (round(2 * 3.6 * DPI), round(3.1 * DPI))  # 2 panels of 3.6 x 2.7 in
    ax = drawn[0].axes[0]
    mean = ax.lines[-1]  # the replicates' thin lines first, then the mean
    assert list(mean.get_xdata()) == [0, 2] and list(mean.get_ydata()) == [1.0, 3.0]  # generation 1 undefined


def test_histograms_bin_finite_values_only(tmp_path, drawn):
    values = {0: np.array([1.0, 2.0, np.nan, np.inf]), 3: np.array([2.0, 4.0, 8.0])}
    path = plots.histograms(values, tmp_path / "h.png", "perplexity", ("human", np.array([1.5, 0.0])), log_x=True,
                            bins=4)
    assert _size(path) == (round(2 * 3.0 * DPI), round(2.8 * DPI))  # 2 panels of 3.0 x 2.4 in
    ax = drawn[0].axes[0]
    lo, hi = ax.get_xlim()
    assert np.isfinite([lo, hi]).all() and lo > 0  # edges from the finite, positive values: 1 .. 8
    bars = [p.get_height() for p in ax.patches[:4]]
    assert sum(bars) == pytest.approx(0.5)  # 2 of 4 sequences are finite: nan and inf fall in no bin


def test_rank_frequency_and_bucket_bars(tmp_path):
    human_V = np.array([50.0, 30, 10, 0, 5])
    counts = {0: np.array([40.0, 35, 12, 0, 3]), 1: np.array([60.0, 30, 5, 0, 0])}
    last_seen_RV = np.array([[1, 1, 1, -1, 0]])
    assert plots.rank_frequency(counts, human_V, tmp_path / "rf.png", human_V / human_V.sum(), last_seen_RV).exists()
    masses = {"human": np.array([0.5, 0.4, 0.1]), "gen 1": np.array([0.6, 0.4, 0.0])}
    assert plots.bucket_bars(masses, ("head", "torso", "tail"), tmp_path / "b.png").exists()


def test_condition_curves_name_each_condition_in_one_legend(tmp_path, drawn):
    aggs = {"regime=replace": {"kl": {0: [0.1, 0.2], 1: [0.3]}}, "regime=mix": {"kl": {0: [0.1, 0.1]}}}
    labels = {"regime=replace": "replace", "regime=mix": "mix, 10 % human"}
    assert plots.condition_curves(aggs, ["kl", "missing"], labels, tmp_path / "g.png").exists()
    (legend,) = drawn[0].legends
    assert [t.get_text() for t in legend.get_texts()] == ["replace", "mix, 10 % human"]


def test_condition_curves_keep_the_means_in_view_under_a_wide_band(tmp_path, drawn):
    aggs = {"a": {"kl": {0: [0.0, 0.2], 1: [0.0, 10.0]}}, "b": {"kl": {0: [0.5, 0.5], 1: [1.0, 1.2]}}}
    plots.condition_curves(aggs, ["kl"], {"a": "a", "b": "b"}, tmp_path / "g.png")
    lo, hi = drawn[0].axes[0].get_ylim()
    assert lo < 0.1 and 5.0 < hi < 8.0  # means 0.1 .. 5; band of a up to 5 + 12.7 * 5 clipped at 5 + 2.5


def test_heatmaps_annotate_every_cell(tmp_path, drawn):
    grid = np.array([[1.0, 2.0], [np.nan, 4.0]])
    assert plots.heatmaps({"kl_true, generation 7": grid}, ["replace", "mix"], ["tokens", "soft"], "regime",
                          "train.target", tmp_path / "h.png").exists()
    assert [t.get_text() for t in drawn[0].axes[0].texts] == ["1", "2", "—", "4"]


def test_metric_curves_draw_a_metric_undefined_everywhere_as_an_empty_panel(tmp_path):
    rows = [{"generation": g, "replicate": 0, "metric": m, "value": None if m == "zipf_exponent" else 1.0 + g}
            for g in range(3) for m in ("zipf_exponent", "kl_true")]
    path = plots.metric_curves(rows, {"zipf_exponent": ["zipf_exponent"], "kl_true": ["kl_true"]}, tmp_path / "m.png")
    assert path.exists()
