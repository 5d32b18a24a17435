"""Report tables: mean ± 95 % t-interval per generation, at most `most` generations for long studies."""

from collapse import report


def test_shown_generations_keep_first_last_and_are_log_spaced():
    assert report.shown_generations(list(range(10))) == list(range(10))
    shown = report.shown_generations(list(range(1000)), most=25)
    assert shown[0] == 0 and shown[-1] == 999 and len(shown) <= 25
    assert shown == sorted(set(shown)) and sum(g < 100 for g in shown) > sum(g >= 100 for g in shown)


def test_table_subsamples_long_studies():
    rows = [{"generation": g, "replicate": r, "metric": "x", "value": float(g + r)}
            for g in range(100) for r in range(3)]
    lines = report.table(rows, ["x"], most=10).splitlines()
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
    arrays = report._rep_arrays(store, "ppl_gen0")
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
    from collapse.report import _histogram_generations

    assert list(_histogram_generations({g: [g] for g in range(10)})) == [0, 1, 2, 3, 5, 9]
    assert list(_histogram_generations({g: [g] for g in range(5)})) == [0, 1, 2, 3, 4]
