"""The `collapse` command as a user runs it (subprocesses): clear refusals, a tiny study, a sweep."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import TINY, compose_cfg



def collapse(*args, cwd):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "collapse.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args,message", [
    (["train.batchsize=3"], "batchsize"),
    (["regime=replaec"], "regime/replaec"),
    (["train.batch_size=-1"], "train.batch_size: must be > 0"),
    (["regime=mix", "regime.human_fraction=1.5"], "regime.human_fraction: must be a fraction in [0, 1]"),
    (["data.seq_len=500"], "data.seq_len = 500 exceeds model.context = 128"),
    (["data=text", "data.path=missing/*.txt"], "missing/*.txt: no file matches"),
    (["model=gaussian", "model.estimator=median"], "model.estimator: must be one of mle, unbiased"),
    (["model=categorical", "model.d_model=3"], "d_model"),
])
def test_bad_input_is_one_clear_error_and_nothing_is_written(tmp_path, args, message):
    result = collapse(*args, f"out_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_tiny_study_in_a_directory_derived_from_it(tmp_path):
    """out_dir=auto: the run directory is a function of the study, so a relaunch finds (and resumes) it."""
    from collapse.config import study_id

    result = collapse(*TINY, "generations=2", "out_dir=auto", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / study_id(compose_cfg(*TINY, "generations=2"))
    assert (run / ".hydra" / "config.yaml").exists() and (run / "report.md").exists()
    gens = {json.loads(x)["generation"] for x in (run / "metrics.jsonl").read_text().splitlines()}
    assert gens == {0, 1}
    assert "gen 1 | ppl_human_test" in result.stderr + result.stdout
    marker = (run / "gen_001" / "score.done").stat().st_mtime_ns
    again = collapse(*TINY, "generations=2", "out_dir=auto", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (run / "gen_001" / "score.done").stat().st_mtime_ns == marker  # found its directory, recomputed nothing
    assert len(list((tmp_path / "runs").iterdir())) == 1


@pytest.mark.parametrize("launcher,sweep", [("joblib", "regime=replace,accumulate"),
                                             ("submitit_local", "regime=accumulate")])
def test_sweeps_with_parallel_and_cluster_launchers(tmp_path, launcher, sweep):
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=10"]
    result = collapse("-m", f"hydra/launcher={launcher}", *extra, *TINY, "generations=1", sweep,
                      f"out_dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((tmp_path / "sweep").glob("[0-9]*"))
    regimes = {json.loads((job / "config.json").read_text())["regime"]["_option"] for job in jobs}
    assert regimes == set(sweep.split("=")[1].split(","))
    assert all((job / "gen_000" / "score.done").exists() for job in jobs)


def test_slurm_launcher_example_composes(tmp_path):
    result = collapse("hydra/launcher=slurm", "--cfg", "hydra", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SlurmLauncher" in result.stdout and "max_num_timeout: 20" in result.stdout


def test_analytic_study(tmp_path):
    # data.seq_len=500 would exceed a transformer's context: the analytic families ignore the data group
    result = collapse("model=gaussian", "generations=50", "replicates=20", "data.seq_len=500", "compilation_cache=",
                      f"out_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 50 * 20 * 4 and max(r["generation"] for r in rows) == 49
    assert (tmp_path / "run" / "report.md").exists()
    assert "gen 49 | det_ratio" in result.stderr + result.stdout
