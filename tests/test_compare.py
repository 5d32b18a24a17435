import json

import pytest

from collapse import compare
from collapse.config import AccumulateConfig, MixConfig, ReplaceConfig, to_dict
from collapse.store import RunDir, save_json
from tests.helpers import tiny_config


def fake_run(path, cfg, values, finished):
    """A run directory with given metric values per (generation, replicate), `finished` generations done."""
    store = RunDir(path)
    save_json(path / "config.json", to_dict(cfg))
    for g, per_rep in enumerate(values):
        store.write_metrics(g, [{"generation": g, "replicate": r, "metric": "kl_true", "value": v, "seed": cfg.seed}
                                for r, v in enumerate(per_rep)])
        if g < finished:
            for phase in ("train", "sample", "score"):
                store.mark_done(g, phase, {"seconds": 1.0}, [store.gen(g) / "metrics.jsonl"])
    store.rebuild_metrics()


def test_groups_pool_seeds_and_name_what_differs(tmp_path):
    for i, (regime, seed, vals) in enumerate([(ReplaceConfig(), 0, [[0.1], [0.3]]), (ReplaceConfig(), 1, [[0.2], [0.5]]),
                                              (AccumulateConfig(), 0, [[0.1], [0.15]])]):
        fake_run(tmp_path / str(i), tiny_config(regime=regime, seed=seed), vals, finished=2)
    (tmp_path / "not-a-run").mkdir()
    runs = compare.find_runs([tmp_path])
    assert len(runs) == 3
    groups = compare.group_runs({r: json.loads((r / "config.json").read_text()) for r in runs})
    assert sorted(groups) == ["regime=accumulate", "regime=replace"]
    assert len(groups["regime=replace"]) == 2
    compare.main([str(tmp_path)])
    text = (tmp_path / "comparison.md").read_text()
    # replace pools seeds 0 and 1: generation 1 mean (0.3 + 0.5) / 2 = 0.4, t(1) interval 12.706 * 0.1
    assert "| regime=replace | 0.15 ± 0.64 | 0.4 ± 1.3 |" in text
    assert "| regime=accumulate | 0.1 | 0.15 |" in text
    assert (tmp_path / "figures" / "comparison.png").exists()
    assert all((r / "report.md").exists() for r in runs)


def test_labels_leave_out_keys_a_run_does_not_have():
    configs = {"a": to_dict(tiny_config(regime=ReplaceConfig())), "b": to_dict(tiny_config(regime=MixConfig()))}
    labels = sorted(compare.group_runs(configs))
    assert labels[1] == "regime=replace"  # no regime.human_fraction=None etc.
    assert labels[0].startswith("regime=mix ") and "human_fraction=0.1" in labels[0] and "None" not in labels[0]


def test_runs_in_progress_contribute_finished_generations(tmp_path):
    fake_run(tmp_path / "a", tiny_config(seed=0), [[0.1], [0.2], [0.9]], finished=2)
    fake_run(tmp_path / "b", tiny_config(seed=1), [[0.3], [0.4], [0.9]], finished=3)
    compare.compare(compare.find_runs([tmp_path]), tmp_path)
    text = (tmp_path / "comparison.md").read_text()
    assert "| all runs | 0.2 ± 1.3 | 0.3 ± 1.3 | 0.9 |" in text  # generation 2: only run b has finished it
    from collapse import report

    text = report.write(RunDir(tmp_path / "a")).read_text()  # a run in progress: its finished generations
    assert "| 1 | 0.2 |" in text and "| 2 | 0.9" not in text and "| 2 | — | — | — |" in text


def test_no_runs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        compare.main([str(tmp_path)])
    assert info.value.code == 2 and "no run directories" in capsys.readouterr().err


def test_keys_that_change_no_number_never_split_a_study():
    from collapse.config import RESUMABLE_KEYS

    # seeds 0 and 1 of one study, run on different CPU device counts and with different trackers
    configs = {"a": to_dict(tiny_config(seed=0, cpu_devices=1)),
               "b": to_dict(tiny_config(seed=1, cpu_devices=2, tracking="tensorboard"))}
    assert compare.group_runs(configs) == {"all runs": ["a", "b"]}
    assert set(compare.IGNORED) == {"seed", *RESUMABLE_KEYS}


def test_replicates_sharing_a_corpus_split_are_not_pooled_as_independent(tmp_path):
    """Text runs: a seed's replicates share its corpus split, so with two seeds the units are the seeds
    (each the mean of its replicates); grammar runs pool every (seed, replicate), each with its own data."""
    from collapse.config import TextConfig

    text = TextConfig(path="corpus.txt", seq_len=16)
    rows = {}
    for seed, vals in ((0, [[0.1, 0.3]]), (1, [[0.5, 0.7]])):
        fake_run(tmp_path / f"text{seed}", tiny_config(data=text, seed=seed, replicates=2), vals, finished=1)
        rows[seed] = compare.RunDir(tmp_path / f"text{seed}").read_metrics()
    pooled, units = compare.pooled_rows({k: v for k, v in rows.items()}, shared=True)
    assert sorted(r["value"] for r in pooled) == pytest.approx([0.2, 0.6]) and units.startswith("2 units: seeds")
    pooled, units = compare.pooled_rows({0: rows[0]}, shared=True)  # one seed: its replicates, conditional on it
    assert len(pooled) == 2 and units == "2 units: replicates of one corpus split"
    pooled, units = compare.pooled_rows(rows, shared=False)
    assert len(pooled) == 4 and units.startswith("4 units: seeds × replicates")
    assert compare.shared_human_data(json.loads((tmp_path / "text0" / "config.json").read_text()))
    assert not compare.shared_human_data(to_dict(tiny_config()))
    compare.main([str(tmp_path)])
    text_md = (tmp_path / "comparison.md").read_text()
    assert "| all runs | 0.4 ± 2.5 |" in text_md  # t(1) = 12.706 over the seed means 0.2 and 0.6: 12.706 * 0.2
