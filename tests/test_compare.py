import json

import pytest

from collapse import compare, comparison, pooling, summary
from collapse.config import to_dict
from collapse.regimes import AccumulateConfig, MixConfig, ReplaceConfig
from collapse.errors import ConfigError
from collapse.files import save_json
from collapse.store import RunDir
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


def group_runs(configs: dict) -> dict[str, list]:
    """{condition: runs} of {run: config.json}, as a comparison groups them."""
    groups: dict[str, list] = {}
    for run, values in summary.varying(configs)[1].items():
        groups.setdefault(pooling.condition(values), []).append(run)
    return groups


@pytest.mark.reports
def test_groups_pool_seeds_and_name_what_differs(tmp_path):
    for i, (regime, seed, vals) in enumerate([(ReplaceConfig(), 0, [[0.1], [0.3]]), (ReplaceConfig(), 1, [[0.2], [0.5]]),
                                              (AccumulateConfig(), 0, [[0.1], [0.15]])]):
        fake_run(tmp_path / str(i), tiny_config(regime=regime, seed=seed), vals, finished=2)
    (tmp_path / "not-a-run").mkdir()
    runs = compare.find_runs([tmp_path])
    assert len(runs) == 3
    groups = group_runs({r: json.loads((r / "config.json").read_text()) for r in runs})
    assert sorted(groups) == ["regime=accumulate", "regime=replace"]
    assert len(groups["regime=replace"]) == 2
    compare.main([str(tmp_path)])
    text = (tmp_path / "comparison.md").read_text()
    # replace pools seeds 0 and 1: generation 1 mean (0.3 + 0.5) / 2 = 0.4, t(1) interval 12.706 * 0.1
    assert "| regime=replace | 2 | 0.15 ± 0.64 | 0.4 ± 1.3 |" in text
    assert "| regime=accumulate | 1 | 0.1 | 0.15 |" in text
    assert (tmp_path / "figures" / "comparison.png").exists()
    assert all((r / "report.md").exists() for r in runs)


def test_labels_leave_out_keys_a_run_does_not_have():
    configs = {"a": to_dict(tiny_config(regime=ReplaceConfig())), "b": to_dict(tiny_config(regime=MixConfig()))}
    labels = sorted(group_runs(configs))
    assert labels[1] == "regime=replace"  # no regime.human_fraction=None etc.
    assert labels[0].startswith("regime=mix ") and "human_fraction=0.1" in labels[0] and "None" not in labels[0]


def test_runs_in_progress_contribute_finished_generations(tmp_path):
    fake_run(tmp_path / "a", tiny_config(seed=0), [[0.1], [0.2], [0.9]], finished=2)
    fake_run(tmp_path / "b", tiny_config(seed=1), [[0.3], [0.4], [0.9]], finished=3)
    compare.compare(compare.find_runs([tmp_path]), tmp_path)
    text = (tmp_path / "comparison.md").read_text()
    assert "| all runs | 2 | 0.2 ± 1.3 | 0.3 ± 1.3 | 0.9 (n=1) |" in text  # generation 2: only run b finished it
    from collapse import report

    text = report.write(RunDir(tmp_path / "a")).read_text()  # a run in progress: its finished generations
    assert "| 1 | 0.2 |" in text and "| 2 | 0.9" not in text and "| 2 | — | — | — |" in text


def test_no_runs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        compare.main([str(tmp_path)])
    assert info.value.code == 2 and "no run directories" in capsys.readouterr().err
    fake_run(tmp_path / "a", tiny_config(seed=0), [[0.1]], finished=1)
    fake_run(tmp_path / "b", tiny_config(seed=1), [[0.2]], finished=1)
    with pytest.raises(SystemExit) as info:  # the comparison's figures would overwrite run a's
        compare.main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert info.value.code == 2 and "name another folder for the comparison with --out" in capsys.readouterr().err


def test_a_missing_path_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        compare.main([str(tmp_path / "nowhere")])
    assert info.value.code == 2 and "nowhere: does not exist" in capsys.readouterr().err


def test_two_runs_of_one_study_are_refused_not_pooled(tmp_path, capsys):
    """A preset's single run beside its sweep's job of the same config and seed: pooling both would read as
    n = 2 with an interval of 0."""
    fake_run(tmp_path / "single", tiny_config(seed=0), [[0.6347]], finished=1)
    fake_run(tmp_path / "0", tiny_config(seed=0), [[0.6347]], finished=1)
    fake_run(tmp_path / "1", tiny_config(seed=1), [[0.7]], finished=1)
    with pytest.raises(SystemExit) as info:
        compare.main([str(tmp_path), "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "the same study as" in err and "single" in err and "0.6347" not in err
    assert not (tmp_path / "cmp" / "comparison.md").exists()


def test_labels_say_what_a_zero_or_a_boolean_means():
    assert pooling.readable({"regime": "accumulate_subsample", "regime.size": "0"}) == \
        "regime=accumulate_subsample, size=train split"
    assert pooling.readable({"regime": "mix", "regime.fresh": "False"}) == "regime=mix, fresh=no"
    assert pooling.units(1, shared=False, seeds=False).startswith("1 unit:")


def test_keys_that_change_no_number_never_split_a_study():
    from collapse.config import RESUMABLE_KEYS

    # seeds 0 and 1 of one study, run on different CPU device counts and with different trackers
    configs = {"a": to_dict(tiny_config(seed=0, cpu_devices=1)),
               "b": to_dict(tiny_config(seed=1, cpu_devices=2, tracking="tensorboard"))}
    assert group_runs(configs) == {"all runs": ["a", "b"]}
    assert set(summary.IGNORED) == {"seed", *RESUMABLE_KEYS}


def test_replicates_sharing_a_corpus_split_are_not_pooled_as_independent(tmp_path):
    """Text runs: a seed's replicates share its corpus split, so with two seeds the units are the seeds
    (each the mean of its replicates); grammar runs pool every (seed, replicate), each with its own data."""
    from collapse.data import TextConfig

    text = TextConfig(path="corpus.txt", seq_len=16)
    rows = {}
    for seed, vals in ((0, [[0.1, 0.3]]), (1, [[0.5, 0.7]])):
        fake_run(tmp_path / f"text{seed}", tiny_config(data=text, seed=seed, replicates=2), vals, finished=1)
        rows[seed] = compare.RunDir(tmp_path / f"text{seed}").read_metrics()
    pooled, units = pooling.pooled_rows({k: v for k, v in rows.items()}, shared=True)
    assert sorted(r["value"] for r in pooled) == pytest.approx([0.2, 0.6]) and units.startswith("2 units: seeds")
    pooled, units = pooling.pooled_rows({0: rows[0]}, shared=True)  # one seed: its replicates, conditional on it
    assert len(pooled) == 2 and units == "2 units: replicates of one corpus split"
    pooled, units = pooling.pooled_rows(rows, shared=False)
    assert len(pooled) == 4 and units.startswith("4 units: seeds × replicates")
    assert summary.shared_human_data(json.loads((tmp_path / "text0" / "config.json").read_text()))
    assert not summary.shared_human_data(to_dict(tiny_config()))
    compare.main([str(tmp_path)])
    text_md = (tmp_path / "comparison.md").read_text()
    assert "| all runs | 2 | 0.4 ± 2.5 |" in text_md  # t(1) = 12.706 over the seed means 0.2 and 0.6: 12.706 * 0.2


# --- summary.csv, incomplete runs, figures and `--all` (issue 15)

def sweep(root, finished=None, error=None):
    """regime ∈ {replace, mix} × train.target ∈ {tokens, soft} × seeds 0, 1: kl_true and distinct_2 per
    (generation, replicate) over 3 generations; run i finishes `finished.get(i, 3)` generations (the next one's
    train marker written) and logs `error`."""
    from collapse.config import TrainConfig

    finished = finished or {}
    for i, (regime, target, seed) in enumerate([(r, t, s) for r in (ReplaceConfig(), MixConfig())
                                                for t in ("tokens", "soft") for s in (0, 1)]):
        path = root / str(i)
        cfg = tiny_config(regime=regime, train=TrainConfig(target=target), seed=seed, replicates=2, generations=3)
        store = RunDir(path)
        save_json(path / "config.json", to_dict(cfg))
        done = finished.get(i, 3)
        for g in range(done):
            store.write_metrics(g, [{"generation": g, "replicate": r, "metric": m, "value": i + g + r / 10 + k,
                                     "seed": seed} for r in range(2) for k, m in enumerate(("kl_true", "distinct_2"))])
            for phase in ("train", "sample", "score"):
                store.mark_done(g, phase, {"seconds": 1.0}, [])
        if done < 3:
            store.mark_done(done, "train", {"seconds": 1.0}, [])
            if error:
                (path / "cli.log").write_text(f"[2026-01-01 00:00:00,000][collapse][ERROR] - {error}\n")
        store.rebuild_metrics()
    return compare.find_runs([root])


def test_summary_csv_has_a_row_per_run_generation_replicate_metric(tmp_path):
    import csv

    runs = sweep(tmp_path / "sweep", finished={1: 0})
    compare.compare(runs, tmp_path / "out")
    with open(tmp_path / "out" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "regime", "regime.fresh", "regime.human_fraction", "regime.size", "train.target",
                             "seed", "shared_human_data", "planned_generations", "finished_generations", "incomplete",
                             "generation", "replicate", "metric", "value"]
    assert len(rows) == 7 * 3 * 2 * 2 + 1  # run 1 finished no generation: one row without a metric
    assert rows[0] == {"run": "0", "regime": "replace", "regime.fresh": "", "regime.human_fraction": "",
                       "regime.size": "", "train.target": "tokens", "seed": "0", "shared_human_data": "false",
                       "planned_generations": "3", "finished_generations": "3", "incomplete": "",
                       "generation": "0", "replicate": "0", "metric": "kl_true", "value": "0.0"}
    (empty,) = [r for r in rows if r["run"] == "1"]
    assert empty["metric"] == "" and empty["finished_generations"] == "0"
    assert empty["incomplete"] == "generation 0: train done, no sample marker"
    mix = [r for r in rows if r["run"] == "7" and r["generation"] == "2" and r["replicate"] == "1"]
    assert [(r["regime"], r["regime.human_fraction"], r["train.target"], r["metric"], float(r["value"]))
            for r in mix] == [("mix", "0.1", "soft", "kl_true", 9.1), ("mix", "0.1", "soft", "distinct_2", 10.1)]


def test_incomplete_runs_are_listed_and_contribute_only_finished_generations(tmp_path, caplog):
    runs = sweep(tmp_path / "sweep", finished={0: 1}, error="loss is nan")
    caplog.set_level("INFO", logger="collapse")
    text = compare.compare(runs, tmp_path / "out").read_text()
    assert "1 of 8 runs are incomplete" in text and "pools only the units that reached g" in text
    why = "error: loss is nan; generation 1: train done, no sample marker"
    assert f"| `0` | regime=replace, target=tokens | 1 of 3 | {why} | finished generations |" in text
    assert "incomplete run 0" in caplog.text and why in caplog.text
    # kl_true of regime=replace, target=tokens: runs 0 (i = 0) and 1 (i = 1), replicates + 0, 0.1; run 0 has gen 0
    assert "| regime=replace, target=tokens | 4 | 0.55 ± 0.92 | 2.05 ± 0.64 (n=2) | 3.05 ± 0.64 (n=2) |" in text
    text = compare.compare(runs, tmp_path / "out2", pooling.Options(complete_only=True)).read_text()
    assert "left out of every aggregate" in text and "| 1 of 3 | " + why + " | no |" in text
    assert "| regime=replace, target=tokens | 2 | 1.05 ± 0.64 | 2.05 ± 0.64 | 3.05 ± 0.64 |" in text


def test_two_varying_config_columns_give_a_heatmap_of_the_last_generation(tmp_path):
    text = compare.compare(sweep(tmp_path / "sweep"), tmp_path / "out").read_text()
    assert "## regime × train.target" in text and (tmp_path / "out" / "figures" / "heatmap.png").exists()
    assert "| regime \\ train.target | tokens | soft |" in text
    assert "| mix | 6.55 ± 0.92 | 8.55 ± 0.92 |" in text  # runs 4, 5 (tokens) and 6, 7 (soft) at generation 2
    runs = compare.find_runs([tmp_path / "sweep"])
    text = compare.compare([runs[0], runs[2]], tmp_path / "out").read_text()  # train.target alone
    assert "## regime" not in text and not (tmp_path / "out" / "figures" / "heatmap.png").exists()  # removed
    text = compare.compare([runs[0], runs[2]], tmp_path / "asked", pooling.Options(heatmap=["regime", "x"])).read_text()
    assert "## regime" not in text  # not two of the config columns: a warning, no heatmap


def test_headline_figure_names_the_conditions_in_its_legend(tmp_path, monkeypatch):
    from collapse.plots import style

    drawn, real = {}, style.save
    monkeypatch.setattr(style, "save", lambda fig, path: drawn.setdefault(path, fig) and real(fig, path))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"regime=replace train.target=tokens": "replace, hard labels"}))
    sweep(tmp_path / "sweep")
    out = tmp_path / "out"
    compare.main([str(tmp_path / "sweep"), "--out", str(out), "--labels", str(labels), "--headline", "distinct_2"])
    fig = drawn[out / "figures" / "comparison.png"]
    assert [ax.get_title() for ax in fig.axes] == ["distinct_2"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "replace, hard labels", "regime=replace, target=soft", "regime=mix, fresh=no, human_fraction=0.1, size=train split, "
        "target=tokens", "regime=mix, fresh=no, human_fraction=0.1, size=train split, target=soft"]
    assert {p.name for p in drawn if p.parent == out / "figures"} == {"comparison.png", "perplexity.png",
                                                                      "heatmap.png"}  # kl_true: the rest
    spec = json.loads((out / "report.json").read_text())
    assert spec["headline"] == ["distinct_2"] and spec["labels"] == json.loads(labels.read_text())
    stray = pooling.Options(labels={"regime=replace target=tokens": "a key spelt as the table's label"})
    with pytest.raises(ConfigError, match="'regime=replace target=tokens' is not a condition.*regime=replace "
                                          "train.target=tokens;"):
        compare.compare(compare.find_runs([tmp_path / "sweep"]), out, stray)


def test_default_headline_is_one_metric_per_family():
    names = ["ppl_human_test", "kl_true", "self_bleu4", "distinct_2", "survival", "tail_mass_ratio", "zipf_exponent"]
    assert comparison.default_headline(names) == ["kl_true", "distinct_2", "tail_mass_ratio"]
    assert comparison.default_headline(["var_ratio", "mean_drift"]) == ["mean_drift", "var_ratio"]  # analytic
    assert pooling.readable({"regime": "mix", "regime.human_fraction": "0.1", "regime.size": ""}) == \
        "regime=mix, human_fraction=0.1"


def test_all_rebuilds_the_same_comparison_from_summary_csv_alone(tmp_path):
    import shutil

    out = tmp_path / "out"
    sweep(tmp_path / "sweep", finished={3: 2})
    compare.main([str(tmp_path / "sweep"), "--out", str(out), "--headline", "kl_true,distinct_2"])
    study = tmp_path / "results" / "study"
    study.mkdir(parents=True)
    for name in ("summary.csv", "report.json"):
        shutil.copy(out / name, study / name)
    shutil.rmtree(tmp_path / "sweep")  # no run directory left
    compare.main(["--all", str(tmp_path / "results")])
    assert (study / "comparison.md").read_text() == (out / "comparison.md").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == ["comparison.png", "heatmap.png"]  # no other metric: no family figure
    assert all((study / "figures" / f).read_bytes() == (out / "figures" / f).read_bytes() for f in figures)
    compare.main([str(study / "summary.csv"), "--out", str(tmp_path / "again")])  # the csv as an input
    assert (tmp_path / "again" / "comparison.md").read_text() == (out / "comparison.md").read_text()


def test_all_names_a_study_without_summary_and_refuses_a_tree_without_studies(tmp_path, capsys, caplog):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "report.json").write_text("{}")
    compare.main(["--all", str(tmp_path)])  # a study not yet rerun since summary.csv exists: skipped, named
    assert "study/report.json: no summary.csv beside it" in caplog.text
    with pytest.raises(SystemExit) as info:
        compare.main(["--all", str(tmp_path / "study" / "figures")])
    assert info.value.code == 2 and "no comparison below it" in capsys.readouterr().err


def test_summary_keeps_only_rows_of_finished_generations(tmp_path):
    from collapse import summary

    fake_run(tmp_path / "a", tiny_config(seed=0), [[0.1], [0.2]], finished=1)
    store = RunDir(tmp_path / "a")
    store.write_run_metrics(store.read_metrics(0) + store.read_metrics(1))  # a row of unfinished generation 1
    for phase in ("train", "sample"):
        store.mark_done(1, phase, {"seconds": 1.0}, [])
    rows, columns = summary.collect({store.path: json.loads((tmp_path / "a" / "config.json").read_text())})
    assert columns == [] and [(r["generation"], r["value"]) for r in rows] == [(0, 0.1)]
    assert rows[0]["incomplete"] == "generation 1: train, sample done, no score marker"


def test_a_config_without_a_later_group_reads_as_its_default_option():
    from collapse.summary import varying

    columns, values = varying({"a": {"seed": 0}, "b": {"seed": 0, "curate": {"_option": "verifier", "noise": 1.0}}})
    assert columns == ["curate", "curate.noise"]
    assert values == {"a": {"curate": "none"}, "b": {"curate": "verifier", "curate.noise": "1.0"}}


def test_a_key_left_out_of_config_json_at_its_default_is_a_value_of_its_column():
    """config.json leaves a key added later out at its default (sample.watermark_delta 2.0), yet a sweep over it
    compares 2.0 with the others, not with no value (which read "all runs")."""
    from collapse.config import SampleConfig, to_dict
    from collapse.summary import varying

    runs = {d: to_dict(tiny_config(sample=SampleConfig(watermark="green_list", watermark_delta=d))) for d in (2.0, 4.0)}
    assert "watermark_delta" not in runs[2.0]["sample"]
    columns, values = varying(runs)
    assert columns == ["sample.watermark_delta"]
    assert values == {2.0: {"sample.watermark_delta": "2.0"}, 4.0: {"sample.watermark_delta": "4.0"}}
    from collapse.regimes import MixConfig, ReplaceConfig  # beside runs of another option, it stays unset
    runs = {"heal": to_dict(tiny_config(regime=ReplaceConfig(heal_after=1, heal_generations=1))),
            "mix": to_dict(tiny_config(regime=MixConfig()))}
    assert "regime.heal_after" not in varying(runs)[1]["mix"] and varying(runs)[1]["heal"]["regime.heal_after"] == "1"


def test_aggregated_summary_gives_the_comparison_of_the_full_one(tmp_path):
    """`--aggregate`: one row per run × generation × metric (n, mean, sd) pools to the same tables, for
    independent replicates (the grammar sweep) and for replicates sharing a corpus split (text, two seeds)."""
    from collapse.data import TextConfig

    sweep(tmp_path / "sweep", finished={3: 2})
    for seed, vals in ((0, [[0.1, 0.3], [0.2, 0.4]]), (1, [[0.5, 0.7], [0.9, 1.3]])):
        fake_run(tmp_path / "text" / str(seed), tiny_config(data=TextConfig(path="c.txt", seq_len=16), seed=seed,
                                                            replicates=2, generations=2), vals, finished=2)
    for study in ("sweep", "text"):
        full, agg = tmp_path / f"{study}-full", tmp_path / f"{study}-agg"
        compare.main([str(tmp_path / study), "--out", str(full)])
        compare.main([str(tmp_path / study), "--out", str(agg), "--aggregate"])
        assert (agg / "comparison.md").read_text() == (full / "comparison.md").read_text()
        header = (agg / "summary.csv").read_text().splitlines()[0].split(",")
        assert header[-5:] == ["generation", "metric", "n", "mean", "sd"]
        rows = (agg / "summary.csv").read_text().splitlines()[1:]
        assert 2 * len(rows) == len((full / "summary.csv").read_text().splitlines()[1:])  # two replicates a row
        compare.main([str(agg / "summary.csv"), "--out", str(tmp_path / f"{study}-again")])  # read back
        assert (tmp_path / f"{study}-again" / "comparison.md").read_text() == (full / "comparison.md").read_text()
    assert "| all runs | 2 | 0.4 ± 2.5 |" in (tmp_path / "text-agg" / "comparison.md").read_text()  # seed means


def test_sweep_jobs_are_found_in_job_order(tmp_path):
    for i in (0, 1, 2, 10, 11):
        (tmp_path / "sweep" / str(i)).mkdir(parents=True)
        (tmp_path / "sweep" / str(i) / "config.json").write_text("{}")
    assert [p.name for p in compare.find_runs([tmp_path / "sweep"])] == ["0", "1", "2", "10", "11"]


@pytest.mark.reports
def test_where_compares_a_subset_of_the_runs_as_if_they_were_all(tmp_path, capsys):
    """`--where` (report.json "where") picks runs by config value: the subset's own conditions, labels and
    heatmap axes, as a comparison of those runs alone; summary.csv holds them only, so --all redraws it."""
    runs = sweep(tmp_path / "sweep")
    alone = compare.compare([r for r in runs if "mix" in (r / "config.json").read_text()], tmp_path / "alone")
    out = tmp_path / "out"
    compare.main([str(tmp_path / "sweep"), "--out", str(out), "--where", "regime=mix"])
    assert (out / "comparison.md").read_text() == alone.read_text().replace("alone", "out")
    assert json.loads((out / "report.json").read_text())["where"] == {"regime": "mix"}
    assert [(r / "report.md").exists() for r in runs] == [False] * 4 + [True] * 4  # only the runs compared
    for bad, why in (["--where", "regime"], "'regime' is not KEY=VALUE"), \
                    (["--where", "regime.sizes=1"], "'regime.sizes' is not a config key of these runs"), \
                    (["--where", "regime=accumulate"], "selects none of the 8 runs"):
        with pytest.raises(SystemExit):
            compare.main([str(tmp_path / "sweep"), "--out", str(tmp_path / "bad"), *bad])
        assert why in capsys.readouterr().err


def test_all_redraws_the_other_studies_when_one_spec_does_not_fit(tmp_path, capsys):
    import shutil

    sweep(tmp_path / "sweep")
    compare.main([str(tmp_path / "sweep"), "--out", str(tmp_path / "results" / "a")])
    shutil.copytree(tmp_path / "results" / "a", tmp_path / "results" / "b")
    spec = tmp_path / "results" / "a" / "report.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "labels": {"regime=none": "gone"}}))
    (tmp_path / "results" / "b" / "comparison.md").unlink()
    with pytest.raises(SystemExit):
        compare.main(["--all", str(tmp_path / "results")])
    assert "a/report.json: 1 of 2 comparisons not redrawn" in capsys.readouterr().err
    assert (tmp_path / "results" / "b" / "comparison.md").exists()
