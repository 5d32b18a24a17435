"""Figures from tiny synthetic data: PNGs of the size the layout gives, undefined values left out."""

import matplotlib.image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.transforms import Bbox
import numpy as np
import pytest

from collapse.plots import curves, distributions, heatmaps, style

DPI = 110


def _size(path):
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


@pytest.fixture
def drawn(monkeypatch):
    """The figures `plots` saves, captured before they are closed."""
    figures, real = [], style.save

    def save(fig, path):
        figures.append(fig)
        return real(fig, path)

    monkeypatch.setattr(style, "save", save)
    return figures


def test_metric_curves_size_and_undefined_values_left_out(tmp_path, drawn):
    rows = [{"generation": g, "replicate": r, "metric": m, "value": None if (m, g) == ("a", 1) else g + r + 0.5}
            for m in ("a", "b") for g in range(3) for r in range(2)]
    path = curves.metric_curves(rows, {"a": ["a"], "b and b": ["b"]}, tmp_path / "f" / "curves.png")
    assert path.exists() and _size(path) == (round(2 * 3.6 * DPI), round(3.3 * DPI))  # 2 panels of 3.6 x 2.7 in
    ax = drawn[0].axes[0]
    (mean,) = [line for line in ax.lines if line.get_label() == "a"]
    assert list(mean.get_xdata()) == [0, 2] and list(mean.get_ydata()) == [1.0, 3.0]  # generation 1 undefined


def test_histograms_bin_finite_values_only(tmp_path, drawn):
    values = {0: np.array([1.0, 2.0, np.nan, np.inf]), 3: np.array([2.0, 4.0, 8.0])}
    path = distributions.histograms(values, tmp_path / "h.png", "perplexity", ("human", np.array([1.5, 0.0])), log_x=True,
                            bins=4)
    assert _size(path) == (round(2 * 3.0 * DPI), round(3.0 * DPI))  # 2 panels of 3.0 x 2.4 in, legend above
    ax = drawn[0].axes[0]
    lo, hi = ax.get_xlim()
    assert np.isfinite([lo, hi]).all() and lo > 0  # edges from the finite, positive values: 1 .. 8
    bars = [p.get_height() for p in ax.patches[:4]]
    assert sum(bars) == pytest.approx(0.5)  # 2 of 4 sequences are finite: nan and inf fall in no bin


def test_rank_frequency_and_bucket_bars(tmp_path):
    human_V = np.array([50.0, 30, 10, 0, 5])
    counts = {0: np.array([40.0, 35, 12, 0, 3]), 1: np.array([60.0, 30, 5, 0, 0])}
    last_seen_RV = np.array([[1, 1, 1, -1, 0]])
    assert distributions.rank_frequency(counts, human_V, tmp_path / "rf.png", human_V / human_V.sum(), last_seen_RV).exists()
    masses = {"human": np.array([0.5, 0.4, 0.1]), "gen 1": np.array([0.6, 0.4, 0.0])}
    assert distributions.bucket_bars(masses, ("head", "torso", "tail"), tmp_path / "b.png").exists()


def test_condition_curves_name_each_condition_in_one_legend(tmp_path, drawn):
    aggs = {"regime=replace": {"kl": {0: [0.1, 0.2], 1: [0.3]}}, "regime=mix": {"kl": {0: [0.1, 0.1]}}}
    labels = {"regime=replace": "replace", "regime=mix": "mix, 10 % human"}
    assert curves.condition_curves(aggs, ["kl", "missing"], labels, tmp_path / "g.png").exists()
    (legend,) = drawn[0].legends
    assert [t.get_text() for t in legend.get_texts()] == ["replace", "mix, 10 % human"]


def test_condition_curves_keep_the_means_in_view_under_a_wide_band(tmp_path, drawn):
    aggs = {"a": {"kl": {0: [0.0, 0.2], 1: [0.0, 10.0]}}, "b": {"kl": {0: [0.5, 0.5], 1: [1.0, 1.2]}}}
    curves.condition_curves(aggs, ["kl"], {"a": "a", "b": "b"}, tmp_path / "g.png")
    lo, hi = drawn[0].axes[0].get_ylim()
    assert lo < 0.1 and 5.0 < hi < 8.0  # means 0.1 .. 5; band of a up to 5 + 12.7 * 5 clipped at 5 + 2.5


def test_heatmaps_annotate_every_cell(tmp_path, drawn):
    grid = np.array([[1.0, 2.0], [np.nan, 4.0]])
    assert heatmaps.heatmaps({"kl_true, generation 7": grid}, ["replace", "mix"], ["tokens", "soft"], "regime",
                          "train.target", tmp_path / "h.png").exists()
    assert [t.get_text() for t in drawn[0].axes[0].texts] == ["1", "2", "—", "4"]


def test_metric_curves_draw_a_metric_undefined_everywhere_as_an_empty_panel(tmp_path):
    rows = [{"generation": g, "replicate": 0, "metric": m, "value": None if m == "zipf_exponent" else 1.0 + g}
            for g in range(3) for m in ("zipf_exponent", "kl_true")]
    path = curves.metric_curves(rows, {"zipf_exponent": ["zipf_exponent"], "kl_true": ["kl_true"]}, tmp_path / "m.png")
    assert path.exists()


def test_axis_gives_each_metric_its_unit_and_kind():
    assert style.axis("kl_true") == style.Axis("nats / token")
    assert style.axis("tail_mass_ratio_model_true").guide == 1.0  # read as tail_mass_ratio: a ratio
    assert style.axis("distinct_3").kind == "probability" and style.axis("survival_head_true").kind == "probability"
    assert style.axis("teacher_gap_kl_true").guide == 0.0 and style.axis("var_ratio").guide == 1.0
    assert style.axis("compression_ratio").guide is None  # bytes over gzip bytes: 1 is no reference
    assert style.axis("something_new") == style.Axis("")


def test_short_labels_drop_whole_shared_words():
    assert style.short_labels(["head_mass_ratio", "tail_mass_ratio"]) == ["head", "tail"]
    assert style.short_labels(["ppl_gen0_mean", "ppl_gen0_median"]) == ["mean", "median"]
    assert style.short_labels(["survival", "survival_tail"]) == ["survival", "survival_tail"]
    assert style.short_labels(["kl_true"]) == ["kl_true"]


def test_metric_curves_draw_the_human_value_the_ratio_guide_and_the_closed_form(tmp_path, drawn):
    rows = [{"generation": g, "replicate": r, "metric": m, "value": 0.5 ** g + r / 10}
            for m in ("var_ratio", "kl_true") for g in range(4) for r in range(2)]
    theory = {"var_ratio": 0.5 ** np.arange(10)}
    curves.metric_curves(rows, {"var_ratio": ["var_ratio"], "kl_true": ["kl_true"]}, tmp_path / "m.png",
                        reference={"kl_true": 0.25}, theory=theory, log_y={"var_ratio"})
    ratio, kl = drawn[0].axes[:2]
    lines = lambda ax, label: [line for line in ax.lines if line.get_label() == label]  # noqa: E731
    (guide,) = lines(ratio, "y = 1")
    (closed,) = lines(ratio, "closed form")
    assert list(guide.get_ydata()) == [1, 1] and ratio.get_yscale() == "log"
    assert list(closed.get_xdata()) == [0, 1, 2, 3] and np.allclose(closed.get_ydata(), theory["var_ratio"][:4])
    (human,) = lines(kl, "human")
    assert list(human.get_ydata()) == [0.25, 0.25] and not lines(kl, "y = 1") and kl.get_yscale() == "linear"
    assert kl.get_ylabel() == "nats / token" and ratio.get_ylabel() == "tr Σ / tr Σ₀"
    legend = [t.get_text() for t in drawn[0].legends[0].get_texts()]  # in the top margin, off the panels
    assert legend == ["mean ± 95 % band", "replicates", "human", "closed form", "y = 1"]


def test_metric_curves_name_the_metrics_of_a_shared_panel_above_it(tmp_path, drawn):
    rows = [{"generation": g, "replicate": 0, "metric": m, "value": g + i}
            for i, m in enumerate(("head_mass_ratio", "tail_mass_ratio")) for g in range(2)]
    curves.metric_curves(rows, {"mass_ratio": ["head_mass_ratio", "tail_mass_ratio"]}, tmp_path / "m.png")
    legend = drawn[0].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["head", "tail"]
    assert legend.get_bbox_to_anchor().y0 >= drawn[0].axes[0].get_window_extent().y1 - 1  # above the axes


def test_rank_frequency_colours_generations_in_order_with_the_truth_on_top(tmp_path, drawn):
    human_V = np.array([50.0, 30, 10, 0, 5])
    counts = {g: human_V + g for g in (0, 1, 5)}
    distributions.rank_frequency(counts, human_V, tmp_path / "rf.png", human_V / human_V.sum())
    lines = {line.get_label(): line for line in drawn[0].axes[0].lines}
    assert list(lines) == ["gen 0", "gen 1", "gen 5", "human train", "truth"]
    truth = lines["truth"]
    assert truth.get_color() == "k" and truth.get_linestyle() == "--"
    assert truth.get_zorder() == max(line.get_zorder() for line in lines.values())
    colours = [lines[f"gen {g}"].get_color() for g in (0, 1, 5)]
    assert len({tuple(c) for c in colours}) == 3 and colours[0][2] > colours[-1][2]  # viridis: blue to green


def test_provenance_draws_one_stacked_bar_per_generation(tmp_path, drawn):
    shares = {0: {"human": 1.0}, 1: {"gen_0": 1.0}, 2: {"gen_1": 1.0}}  # replace: a new origin each generation
    distributions.provenance(shares, {0: 0.0, 1: 1.0, 2: 2.0}, tmp_path / "p.png")
    ax = drawn[0].axes[0]
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert not ax.collections and sorted((b.get_x() + b.get_width() / 2, b.get_height()) for b in bars) == [
        (0, 1.0), (1, 1.0), (2, 1.0)]


def test_condition_curves_mark_a_single_unit_and_keep_identical_conditions_apart(tmp_path, drawn):
    same = {"kl": {0: [0.1, 0.2], 1: [0.3, 0.4]}}
    aggs = {"a": same, "b": same, "c": {"kl": {0: [0.5], 1: [0.6]}}}
    curves.condition_curves(aggs, ["kl"], {"a": "a", "b": "b", "c": "c"}, tmp_path / "g.png", n={"a": 2, "b": 2, "c": 1})
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in drawn[0].legends[0].get_texts()] == ["a", "b", "c (n = 1)"]
    assert len(ax.collections) == 2  # bands of a and b; none for c
    a, b, _ = ax.lines
    assert list(a.get_ydata()) == list(b.get_ydata()) and 0 < b.get_xdata()[0] - a.get_xdata()[0] < 0.5


def test_heatmaps_wrap_long_titles_and_keep_labels_apart(tmp_path, drawn):
    grid = np.arange(6.0).reshape(2, 3)
    rows, cols = ["accumulate_subsample", "['small', 'tiny']"], ["0.0", "a long column value", "1.0"]
    panels = {f"tail_mass_ratio_model_true, generation {g}": grid for g in (7, 8, 9, 10)}
    heatmaps.heatmaps(panels, rows, cols, "model_schedule", "train.target", tmp_path / "heatmap.png",
                   units={t: "token share / reference" for t in panels})
    fig = drawn[0]
    renderer = FigureCanvasAgg(fig).get_renderer()  # `save` closed the figure
    heat = [ax for ax in fig.axes if ax.images]
    assert all("\n" in ax.get_title() for ax in heat)
    boxes = [Bbox.union([heatmap.get_tightbbox(renderer), bar.get_tightbbox(renderer)])  # a panel, its labels
             for heatmap, bar in zip(fig.axes[::2], fig.axes[1::2])]                    # and its colorbar
    inside = fig.bbox.padded(1)
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0 and b.y1 <= inside.y1 for b in boxes)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
