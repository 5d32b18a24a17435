"""Report tables: mean ± 95 % t-interval per generation, at most `most` generations for long studies."""

from collapse import report, tables
from collapse.plots import per_run


def test_shown_generations_keep_first_last_and_are_log_spaced():
    assert tables.shown_generations(list(range(10))) == list(range(10))
    shown = tables.shown_generations(list(range(1000)), most=25)
    assert shown[0] == 0 and shown[-1] == 999 and len(shown) <= 25
    assert shown == sorted(set(shown)) and sum(g < 100 for g in shown) > sum(g >= 100 for g in shown)


def test_table_subsamples_long_studies():
    rows = [{"generation": g, "replicate": r, "metric": "x", "value": float(g + r)}
            for g in range(100) for r in range(3)]
    lines = tables.table(rows, ["x"], most=10).splitlines()
    assert 2 < len(lines) - 2 <= 10 and lines[2].startswith("| 0 | 1 ± ") and lines[-1].startswith("| 99 | 100 ± ")


def test_report_lists_generations_past_999_and_replicates_past_99(tmp_path):
    import numpy as np

    from collapse.files import save_array
    from collapse.store import RunDir

    store = RunDir(tmp_path)
    for g in (0, 1000):
        store.write_metrics(g, [{"generation": g, "replicate": 0, "metric": "distinct_1", "value": 0.5}])
        for r in (0, 100):
            save_array(store.rep(g, r) / "ppl_gen0.npy", np.full(4, 10.0 + r))
        for phase in ("train", "sample", "score"):
            store.mark_done(g, phase, {"seconds": 1.0}, [])
    store.rebuild_metrics()
    arrays = per_run._rep_arrays(store, "ppl_gen0")
    assert sorted(arrays) == [0, 1000]
    assert [float(a[0]) for a in arrays[1000]] == [10.0, 110.0]
    text = report.write(store).read_text()
    assert "| 1000 | 1.0s | 1.0s | 1.0s |" in text


def test_report_names_the_transformer_size(tmp_path):
    from collapse.config import to_dict
    from collapse.families import SmallConfig
    from collapse.files import save_json
    from collapse.store import RunDir
    from tests.helpers import tiny_config

    store = RunDir(tmp_path)
    save_json(tmp_path / "config.json", to_dict(tiny_config(model=SmallConfig())))
    store.write_metrics(0, [{"generation": 0, "replicate": 0, "metric": "distinct_1", "value": 0.5}])
    for phase in ("train", "sample", "score"):
        store.mark_done(0, phase, {"seconds": 1.0}, [])
    store.rebuild_metrics()
    assert "regime **replace**, data **grammar**, model **small**, 1 replicate(s)" in report.write(store).read_text()


def test_per_sequence_histograms_show_shumailovs_generations():
    """Of ten generations the histograms show 0, 1, 2, 3, 5, 9 (Shumailov et al. 2024, Fig. 1); all of five."""
    from collapse.plots.per_run import histogram_generations

    assert histogram_generations(list(range(10))) == [0, 1, 2, 3, 5, 9]
    assert histogram_generations(list(range(5))) == [0, 1, 2, 3, 4]


def _drawn(monkeypatch) -> dict:
    """{file name: figure} of what `style.save` writes, captured before it is closed."""
    from collapse.plots import style

    drawn, real = {}, style.save
    monkeypatch.setattr(style, "save", lambda fig, path: drawn.setdefault(path.name, fig) and real(fig, path))
    return drawn


def _run(tmp_path, values: dict, cfg=None):
    """A finished run directory: `values` {metric: value per (generation, replicate)}, two replicates."""
    from collapse.config import to_dict
    from collapse.store import RunDir, save_json

    store = RunDir(tmp_path)
    if cfg is not None:
        save_json(tmp_path / "config.json", to_dict(cfg))
    gens = len(next(iter(values.values())))
    for g in range(gens):
        store.write_metrics(g, [{"generation": g, "replicate": r, "metric": m, "value": v[g][r]}
                                for m, v in values.items() for r in range(2)])
        for phase in ("train", "sample", "score"):
            store.mark_done(g, phase, {"seconds": 1.0}, [])
    store.rebuild_metrics()
    return store


def test_constant_metrics_need_two_generations():
    rows = [{"generation": g, "replicate": r, "metric": m, "value": v}
            for g in range(2) for r in range(2) for m, v in (("distinct_1", 0.25), ("distinct_2", g + r / 2))]
    assert report.constant_metrics(rows) == {"distinct_1": 0.25}
    assert report.constant_metrics([row for row in rows if row["generation"] == 0]) == {}  # one generation: all flat


def test_report_names_constant_metrics_and_draws_the_human_row(tmp_path, monkeypatch):
    from collapse.store import save_json

    drawn = _drawn(monkeypatch)
    store = _run(tmp_path, {"distinct_1": [[0.25, 0.25], [0.25, 0.25]], "distinct_2": [[0.5, 0.6], [0.4, 0.45]],
                            "dup_frac": [[0.0, 0.0], [0.0, 0.0]]})
    save_json(store.human_reference, [{"distinct_2": 0.7, "distinct_1": 0.25}, {"distinct_2": 0.8, "distinct_1": 0.25}])
    text = report.write(store).read_text()
    assert "Constant in every generation and replicate (no panel): distinct_1 = 0.25, dup_frac = 0." in text
    (ax,) = [ax for ax in drawn["diversity.png"].axes if ax.get_title()]
    labelled = [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]
    assert ax.get_title() == "distinct_n" and labelled == ["human", "distinct_2"]  # no line for distinct_1
    (human,) = [line for line in ax.lines if line.get_label() == "human"]
    assert human.get_ydata()[0] == 0.75  # the mean of the two human datasets' rows
    assert ax.get_ylabel() == "distinct / all n-grams"


def test_analytic_report_draws_ratios_on_a_log_axis_under_their_closed_form(tmp_path, monkeypatch):
    import numpy as np

    from collapse.config import Config
    from collapse.families import GaussianConfig
    from collapse.regimes import ReplaceConfig
    from collapse.families import gaussian

    model = GaussianConfig(samples=10)
    drawn = _drawn(monkeypatch)
    store = _run(tmp_path, {"var_ratio": [[1.0, 0.8], [0.7, 0.9], [0.5, 0.6]], "w2_true": [[0.1, 0.2]] * 3},
                 Config(model=model, generations=3, replicates=2, compilation_cache=""))
    assert "Dashed black: the expectation in closed form (var_ratio;" in report.write(store).read_text()
    ratio, w2 = [ax for ax in drawn["metrics.png"].axes if ax.get_title()]
    (closed,) = [line for line in ratio.lines if line.get_label() == "closed form"]
    assert np.allclose(closed.get_ydata(), gaussian.expected_var_ratio(model, ReplaceConfig(), 3))
    assert np.allclose(closed.get_ydata(), 0.9 ** np.arange(1, 4))  # ((M - 1) / M)^(g + 1), M = 10
    assert ratio.get_yscale() == "log" and w2.get_yscale() == "linear"
