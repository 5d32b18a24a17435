"""The analytic runner: regime sizes, key derivation (vmapped = alone, longer = extended), the run directory."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest

from collapse.run import loop
from collapse import regimes
from collapse.config import Config
from collapse.errors import ConfigError
from collapse.families import CategoricalConfig, GMMConfig, GaussianConfig
from collapse.regimes import AccumulateConfig, AccumulateSubsampleConfig, MixConfig, ReplaceConfig
from collapse.families import analytic

M, G = 12, 5


def cfg_for(model, regime=ReplaceConfig(), **kw):
    return Config(**{"model": model, "regime": regime, "generations": G, "replicates": 3, "compilation_cache": "",
                     **kw})


REGIMES = [ReplaceConfig(), AccumulateConfig(), AccumulateSubsampleConfig(size=7), MixConfig(human_fraction=0.25),
           MixConfig(human_fraction=0.5, fresh=True, size=10)]


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: f"{r.name}{vars(r)}")
def test_training_sets_have_the_regime_sizes(regime):
    cfg = cfg_for(GaussianConfig(samples=M), regime)
    n = analytic.simulate(cfg, snapshots=range(G)).params["n"]  # [G, R] points each fit saw
    expected = [regimes.training_size(regime, g, M, M) for g in range(G)]
    np.testing.assert_array_equal(n, np.repeat(np.asarray(expected, np.float32)[:, None], 3, 1))


# Every key phase: REGIME (subsets, fresh draws), SAMPLE, INIT (GMM), the human stream.
FAMILY_RUNS = [(GaussianConfig(samples=M, dim=2), MixConfig(human_fraction=0.5, fresh=True)),
               (CategoricalConfig(samples=M, vocab_size=20, order=2, seq_len=4), AccumulateSubsampleConfig()),
               (GMMConfig(samples=40, dim=1), ReplaceConfig())]


@pytest.mark.parametrize("model,regime", FAMILY_RUNS, ids=lambda x: type(x).__name__)
def test_a_replicate_alone_equals_it_within_a_vmapped_run(model, regime):
    cfg = cfg_for(model, regime, replicates=4)
    together = analytic.simulate(cfg, snapshots=[G - 1])
    alone = analytic.simulate(cfg, replicates=[2], snapshots=[G - 1])
    for name, values in together.metrics.items():
        np.testing.assert_allclose(alone.metrics[name][:, 0], values[:, 2], rtol=1e-5, atol=1e-6, err_msg=name)
    for name, values in together.params.items():
        np.testing.assert_allclose(alone.params[name][:, 0], values[:, 2], rtol=1e-5, atol=1e-6, err_msg=name)
    first = next(iter(together.params.values()))
    assert not np.allclose(first[:, 1], first[:, 2])  # replicates differ


def test_refused_before_any_compute(tmp_path):
    with pytest.raises(ConfigError, match="regime.size.*model.samples gives 12"):
        analytic.check(cfg_for(GaussianConfig(samples=M), MixConfig(human_fraction=0.5, size=30)))
    with pytest.raises(ConfigError, match="regime.size"):  # a full-rank covariance needs >= dim + 1 points
        analytic.check(cfg_for(GaussianConfig(samples=M, dim=5), MixConfig(size=4)))
    big = cfg_for(GMMConfig(), AccumulateConfig(), generations=10**5, replicates=10)  # EM keeps every point
    with pytest.raises(ConfigError, match="generations"):
        loop.run(big, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_subsets_are_uniform():
    # 20 000 draws of 2 of 5: each of the 10 pairs ~ Binomial(20 000, 1/10); Bonferroni over the pairs
    # for a family-wise false alarm of 1e-4 (z = 4.4).
    import jax

    keys = jax.random.split(jax.random.key(0), 20000)
    picks = np.sort(np.asarray(jax.vmap(lambda k: analytic._subset(k, jnp.int32(5), 2))(keys)), 1)
    assert np.all(picks[:, 0] < picks[:, 1]) and picks.min() >= 0 and picks.max() < 5
    counts = np.unique(picks[:, 0] * 5 + picks[:, 1], return_counts=True)[1]
    assert len(counts) == 10 and np.all(np.abs(counts - 2000) <= 4.4 * np.sqrt(20000 * 0.1 * 0.9))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("analytic")
    cfg = cfg_for(GaussianConfig(samples=M), AccumulateConfig(), generations=40, replicates=4, seed=3)
    loop.run(cfg, path)
    return cfg, path


def read_rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_run_directory(finished):
    cfg, path = finished
    assert json.loads((path / "config.json").read_text())["model"]["_option"] == "gaussian"
    rows = read_rows(path)
    names = {"mean_sq_dist", "var_ratio", "det_ratio", "w2_true"}
    assert len(rows) == 40 * 4 * len(names) and {r["metric"] for r in rows} == names
    assert {(r["generation"], r["replicate"]) for r in rows} == {(g, r) for g in range(40) for r in range(4)}
    assert all(set(r) == {"generation", "replicate", "metric", "value", "seed"} and r["seed"] == 3 for r in rows)
    marker = json.loads((path / "generations.done").read_text())
    assert marker["generations"] == 40 and marker["replicates"] == 4
    shown = np.load(path / "params" / "generation.npy")
    assert shown[0] == 0 and shown[-1] == 39 and len(shown) <= 25
    assert np.load(path / "params" / "cov_DD.npy").shape == (len(shown), 4, 1, 1)
    report = (path / "report.md").read_text()
    assert "model **gaussian**" in report and "40/40 generations complete" in report
    assert f"{len(shown)} of 40 generations shown" in report and "| 39 |" in report and "| 38 |" not in report
    assert (path / "figures" / "metrics.png").stat().st_size > 1000
    assert not list(path.glob("gen_*"))


def test_rerun_recomputes_nothing_and_more_generations_extend(finished, tmp_path):
    cfg, path = finished
    before = (path / "generations.done").stat().st_mtime_ns
    loop.run(cfg, path)
    assert (path / "generations.done").stat().st_mtime_ns == before
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    loop.run(dataclasses.replace(cfg, generations=50), copy)
    rows, longer = read_rows(path), read_rows(copy)
    assert len(longer) == len(rows) * 50 // 40
    key = lambda r: (r["generation"], r["replicate"], r["metric"])  # noqa: E731
    old = {key(r): r["value"] for r in rows}
    new = {key(r): r["value"] for r in longer if r["generation"] < 40}
    assert new.keys() == old.keys()
    np.testing.assert_allclose([new[k] for k in old], list(old.values()), rtol=1e-6)
    with pytest.raises(ConfigError, match="model.samples"):
        loop.run(dataclasses.replace(cfg, model=GaussianConfig(samples=M + 1)), path)


def test_metric_lines_are_those_the_store_writes(tmp_path):
    from collapse.store import RunDir

    rows = [{"generation": 3, "replicate": 1, "metric": "var_ratio", "value": v, "seed": 7}
            for v in (0.1, 1e-30, -2.5, None, 3.0, 12345678.125)]
    RunDir(tmp_path).write_metrics(3, rows)
    RunDir(tmp_path).write_run_metrics(rows)  # one writer for a generation's rows and a whole study's
    assert (tmp_path / "metrics.jsonl").read_bytes() == (tmp_path / "gen_003" / "metrics.jsonl").read_bytes()
    assert [json.loads(line)["value"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == \
        [0.1, 1e-30, -2.5, None, 3.0, 12345678.125]
