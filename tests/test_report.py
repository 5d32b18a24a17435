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
