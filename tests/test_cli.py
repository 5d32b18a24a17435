"""The `collapse` command as a user runs it (subprocesses): clear refusals, a tiny study, a sweep. Refusals
that happen before Hydra runs are checked in this process (`refused`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import TINY, compose_cfg


def collapse(*args, cwd):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "collapse.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args,message", [
    (["train.batchsize=3"], "batchsize"),
    (["regime=replaec"], "regime: no option replaec; did you mean regime=replace?"),
    (["train.batch_size=-1"], "train.batch_size: must be > 0"),
    (["regime=mix", "regime.human_fraction=1.5"], "regime.human_fraction: must be a fraction in [0, 1]"),
    (["data.seq_len=500"], "data.seq_len = 500 exceeds model.context = 128"),
    (["data=text", "data.path=missing/*.txt"], "missing/*.txt: no file matches"),
    (["model=gaussian", "model.estimator=median"], "model.estimator: must be one of mle, unbiased"),
    (["model=categorical", "model.d_model=3"], "d_model"),
])
def test_bad_input_is_one_clear_error_and_nothing_is_written(tmp_path, args, message):
    result = collapse(*args, f"out_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert (result.stdout + result.stderr).count("collapse: ") == 1  # once, on stderr
    assert not (tmp_path / "run").exists()


def refused(capsys, *args):
    """`collapse <args>` refused before Hydra runs (here, in this process): (exit status, stderr lines)."""
    from collapse.cli import preflight
    from collapse.hydra_config import register_configs

    register_configs()
    with pytest.raises(SystemExit) as exit:
        preflight(list(args))
    return exit.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("args,message", [
    (["data.n_trian=100"], "data.n_trian: no such key; did you mean data.n_train?"),
    (["+data.n_trian=100"], "data.n_trian: no such key; did you mean data.n_train?"),  # Hydra's own hint
    (["--cfg", "job", "data.n_trian=100"], "data.n_trian: no such key; did you mean data.n_train?"),
    (["generations=abc"], "generations: 'abc' is not an integer"),
    (["regime=replce"], "regime: no option replce; did you mean regime=replace?"),
    (["regime.human_fraction=0.5"], "regime.human_fraction: not a key of regime=replace (accumulate, "
                                    "accumulate_subsample, mix have it)"),
    (["experiment=kazdan2024"], "experiment: is not in the defaults list; add it with +experiment=kazdan2024"),
    (["+experiment=kazdan"], "experiment: no option kazdan; did you mean experiment=kazdan2024?"),
    (["scale=smoke"], "scale: only a preset has a scale"),
    (["generations=[1,"], "generations=[1,: does not parse"),
    (["seed=0,1"], "seed=0,1: is a sweep: run it with -m"),
    (["-m", "model=gaussian", "generations=2,0"], "must be > 0, got 0 (the job generations=0)"),
    (["-m", "+experiment=gerstgrasser2024", "scale=smoke", "train.batch_size=16,0"],
     "train.batch_size: must be > 0, got 0 (the job regime=replace train.batch_size=0)"),
])
def test_a_bad_command_line_is_one_line_before_hydra_writes_anything(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    status, lines = refused(capsys, *args, f"out_dir={tmp_path / 'run'}")
    assert status == 2 and len(lines) == 1 and lines[0].startswith("collapse: config error: "), lines
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []  # a sweep's bad job too: refused before the first job starts


def test_an_unwritable_out_dir_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("notes")
    status, lines = refused(capsys, "model=gaussian", "out_dir=notes.txt/run")
    assert status == 2 and lines == [
        "collapse: config error: out_dir: cannot write the run directory notes.txt/run: notes.txt is not a directory"]


@pytest.mark.parametrize("before,args", [
    ("notes", ["generations=0"]),  # the reproduction: refused before Hydra runs
    ("empty", ["data=text", "data.path=missing/*.txt"]),  # refused in the job, after Hydra made the directory
    ("none", ["data=text", "data.path=missing/*.txt"]),
])
def test_a_refusal_removes_only_the_directories_it_created(tmp_path, before, args):
    """An out_dir that existed before the command (holding only a log, or nothing) is never removed; one the
    command created (and its new parents) is."""
    out = tmp_path / "d" if before != "none" else tmp_path / "new" / "deep" / "d"
    if before != "none":
        out.mkdir()
    if before == "notes":
        (out / "notes.log").write_text("notes\n")
    result = collapse(*args, f"out_dir={out}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    if before == "none":
        assert list(tmp_path.iterdir()) == []
    else:
        assert sorted(p.name for p in out.iterdir()) == (["notes.log"] if before == "notes" else [])
        assert before != "notes" or (out / "notes.log").read_text() == "notes\n"


def _existing_run(path):
    """A run directory as an earlier `collapse model=gaussian` left it (its config, launch record and log)."""
    from collapse.config import to_dict

    (path / ".hydra").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(to_dict(compose_cfg("model=gaussian"))))
    (path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (path / "cli.log").write_text("[2025-01-01 00:00:00,000][collapse][INFO] - run directory\n")
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", ["different study", "lock held"])
def test_a_refused_command_writes_nothing_into_an_existing_run(tmp_path, case):
    import fcntl

    run = tmp_path / "run"
    files = _existing_run(run)
    with open(run / ".lock", "a+") as lock:
        if case == "lock held":  # another collapse process is running this study
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        files[run / ".lock"] = b""
        result = collapse("model=gaussian", "compilation_cache=", f"out_dir={run}",
                          *(["seed=1"] if case == "different study" else []), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = "holds a different study (changed: seed)" if case == "different study" else "in use by another"
    assert message in result.stderr.strip().splitlines()[-1]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files  # byte for byte, nothing added


def test_the_run_log_gives_collapse_report_its_failure_reason(tmp_path):
    """<run>/cli.log, in the format the command writes it, is where `collapse.summary` finds why a run failed."""
    import logging

    from collapse.cli import LOG_FORMAT
    from collapse.summary import last_error

    handler = logging.FileHandler(tmp_path / "cli.log")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("collapse")
    handler.handle(logger.makeRecord("collapse", logging.ERROR, __file__, 0, "config error: curate.scorer: x", None,
                                     None))
    handler.close()
    assert last_error(tmp_path) == "config error: curate.scorer: x"


def _nan_scorer(tokens_NT, prompt_tokens):
    return np.where(tokens_NT[:, 0] > 1, np.nan, 1.0)


def _pair_scorer(tokens_NT, prompt_tokens):
    return np.ones((len(tokens_NT), 2))


@pytest.mark.parametrize("scorer,returned", [("_nan_scorer", "it returned 2 NaN among 3 scores"),
                                             ("_pair_scorer", "it returned shape (3, 2)")])
def test_a_users_scorer_returning_nonsense_is_a_config_error(scorer, returned):
    from collapse.curation import scores
    from collapse.errors import ConfigError

    with pytest.raises(ConfigError, match="one finite score per candidate") as error:
        scores.user(f"tests.test_cli:{scorer}", np.array([[1, 1], [2, 1], [3, 1]]), 1)
    assert error.value.key == "curate.scorer" and str(error.value).endswith(returned)


def test_tiny_study_in_a_directory_derived_from_it(tmp_path):
    """out_dir=auto: the run directory is a function of the study, so a relaunch finds (and resumes) it."""
    from collapse.config import study_id

    result = collapse(*TINY, "generations=2", "out_dir=auto", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / study_id(compose_cfg(*TINY, "generations=2"))
    assert (run / ".hydra" / "config.yaml").exists() and (run / "report.md").exists()
    assert "run directory" in (run / "cli.log").read_text()  # the job's log, from the study's acceptance on
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
