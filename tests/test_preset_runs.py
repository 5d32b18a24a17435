"""Study presets run at smoke scale: the first job of each preset that takes a code path of its own, in this
process, and two sweeps end to end through the command (tests/test_presets.py validates every job)."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collapse.families import AnalyticConfig
from tests.helpers import XLA_CACHE, write_corpus
from tests.test_presets import PRESETS, compose_jobs, sweep_jobs


@pytest.fixture(scope="module", autouse=True)
def _corpus(tmp_path_factory):
    """The text presets read a corpus of the tests' own (COLLAPSE_TEXT), set before any job is composed: a job
    composed without it would name ../shared's corpus."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLLAPSE_TEXT", str(write_corpus(tmp_path_factory.mktemp("text") / "corpus.txt", 400)))
        yield


@functools.cache
def first_job(preset: str) -> list:
    """The config of the first job of `collapse -m +experiment=<preset> scale=smoke`."""
    return compose_jobs(sweep_jobs(f"+experiment={preset}", "scale=smoke")[:1])


def collapse(*args, cwd):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "collapse.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def finished(sweep: Path) -> list[dict]:
    jobs = sorted(sweep.glob("[0-9]*"))
    assert jobs
    for job in jobs:
        assert (job / "report.md").exists(), job
    return [json.loads((job / "config.json").read_text()) for job in jobs]


def test_analytic_preset_runs_its_whole_sweep(tmp_path):
    result = collapse("-m", "+experiment=gerstgrasser2024_linreg", "scale=smoke", "compilation_cache=", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    configs = finished(tmp_path / "runs" / "gerstgrasser2024_linreg" / "smoke")  # the default out_dir
    assert [c["regime"]["_option"] for c in configs] == ["replace", "accumulate", "accumulate_subsample", "mix"]


def test_language_model_preset_runs_at_smoke_scale(tmp_path):
    """shumailov2024_lm through the command on a corpus of the test's own (data.name), with beam search:
    continuation prompts, the human share of its second arm, through data=hf's local-file reader."""
    corpus = write_corpus(tmp_path / "corpus.txt", n_paragraphs=400)
    result = collapse("-m", "+experiment=shumailov2024_lm", "scale=smoke", f"data.name={corpus}",
                      "sample.beam_size=5", "regime.human_fraction=0.1", "seed=0", f"compilation_cache={XLA_CACHE}",
                      f"out_dir={tmp_path / 'lm'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [config] = finished(tmp_path / "lm")
    assert (config["regime"]["human_fraction"], config["sample"]["beam_size"]) == (0.1, 5)
    assert (tmp_path / "lm" / "0" / "gen_001" / "score.done").exists()


def code_path(preset: str) -> tuple:
    """What a preset's first smoke job exercises beyond its sizes (which every job's validation checks): the
    data source, the model (and schedule), the regime and its healing, the training target and teacher, curation,
    sampling, labs (a watermark is sampling's: tests/test_watermark.py runs it)."""
    from collapse.options import option_name

    [cfg] = first_job(preset)
    return (option_name(cfg.data), option_name(cfg.model), tuple(cfg.model_schedule), option_name(cfg.regime),
            getattr(cfg.regime, "fresh", None), cfg.train.target, cfg.train.teacher, cfg.train.teacher_probs,
            option_name(cfg.curate), cfg.sample.mode, cfg.sample.beam_size > 1, bool(cfg.labs),
            cfg.regime.heal_generations > 0)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_one_job_at_smoke_scale(preset, tmp_path):
    """The first job of every preset's sweep at scale=smoke, in this process, to its last generation's report
    (the text presets on a corpus of the test's own). A preset whose first job takes the
    code path of a preset before it (`code_path`) is that run again at other sizes, and is skipped; the
    language-model preset runs its whole sweep through the command below."""
    from collapse.run import loop
    from collapse.report import write

    if preset == "shumailov2024_lm":
        pytest.skip("its sweep runs in test_language_model_preset_runs_at_smoke_scale")
    same = [other for other in PRESETS[:PRESETS.index(preset)] if code_path(other) == code_path(preset)]
    if same:
        pytest.skip(f"the code path of {same[0]}'s first job")
    [cfg] = first_job(preset)
    store = loop.run(cfg, tmp_path / "run")
    write(store)
    assert (tmp_path / "run" / "report.md").exists()
    if not isinstance(cfg.model, AnalyticConfig):
        assert store.finished_generations() == list(range(cfg.generations))
