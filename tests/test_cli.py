"""The `collapse` command as a user runs it (subprocesses): clear refusals, a tiny study, a sweep."""

import json
import os
import subprocess
import sys

import pytest

TINY = ["data.vocab_size=16", "data.n_states=4", "data.n_train=64", "data.n_valid=16", "data.n_test=32",
        "data.seq_len=16", "model.d_model=32", "model.d_ff=64", "model.context=32", "train.batch_size=16",
        "train.epochs=2", "sample.batch_size=64", "compilation_cache="]


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
])
def test_bad_input_is_one_clear_error_and_nothing_is_written(tmp_path, args, message):
    result = collapse(*args, f"out_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_tiny_study_and_sweep(tmp_path):
    result = collapse(*TINY, "generations=2", f"out_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    assert (run / ".hydra" / "config.yaml").exists() and (run / "report.md").exists()
    gens = {json.loads(x)["generation"] for x in (run / "metrics.jsonl").read_text().splitlines()}
    assert gens == {0, 1}
    assert "gen 1 | ppl_human_test" in result.stderr + result.stdout

    sweep = collapse("-m", *TINY, "generations=1", "regime=replace,accumulate", f"out_dir={tmp_path / 'sweep'}",
                     cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "metrics.jsonl").exists()
    regimes_run = {json.loads((tmp_path / "sweep" / j / "config.json").read_text())["regime"]["_option"]
                   for j in ("0", "1")}
    assert regimes_run == {"replace", "accumulate"}
