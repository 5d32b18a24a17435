"""Interrupted studies resume to exactly the numbers of an uninterrupted run; bad run directories are refused."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from collapse.run import loop
from collapse import train
from collapse.config import SampleConfig
from collapse.errors import DataError
from tests.helpers import TINY, assert_same, outputs, stopped_at_call, tiny_config

CHECKPOINTED = dataclasses.replace(tiny_config().train, epochs=4, checkpoint_every=4)  # 16 steps, 4 chunks


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted study, its samples watermarked and some withheld (so a resumed study with both is checked
    too)."""
    path = tmp_path_factory.mktemp("reference")
    cfg = tiny_config(train=CHECKPOINTED, sample=SampleConfig(batch_size=64, watermark="green_list", withheld=16))
    loop.run(cfg, path)
    return cfg, path


def test_mid_generation_checkpoint_resumes_exactly(reference, tmp_path, monkeypatch):
    cfg, ref = reference
    with stopped_at_call(monkeypatch, train, "train_chunk", 4 + 3):  # generation 0 has 4 chunks
        loop.run(cfg, tmp_path)
    assert (tmp_path / "gen_001" / "train_state").is_dir() and not (tmp_path / "gen_001" / "train.done").exists()
    loop.run(cfg, tmp_path)
    assert not (tmp_path / "gen_001" / "train_state").exists()
    assert_same(outputs(tmp_path), outputs(ref))


def test_sigkill_at_random_points_then_resume(tmp_path):
    """Kill the command at random moments (seeded), rerun it each time: the same numbers and samples. Through a
    model schedule (generation 0 `tiny` at its sizes, 0.4 M parameters; later ones `small` cut to the TINY
    shape), so a resumed generation also rebuilds the right family; a study of one size resumes through the
    same phases (and mid-generation, in-process: test_mid_generation_checkpoint_resumes_exactly)."""
    overrides = [*TINY, "train.epochs=4", "train.checkpoint_every=4", "generations=3", "model=small",
                 "model_schedule=[tiny,small]"]
    ref, run = tmp_path / "ref", tmp_path / "killed"
    cmd = [sys.executable, "-m", "collapse.cli", *overrides, f"out_dir={run}"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # the reference through the command too: both split the CPU alike (cpu_devices), so both agree bit for bit
    subprocess.run([*cmd[:-1], f"out_dir={ref}"], env=env, check=True, capture_output=True)
    rng, kills = np.random.default_rng(0), 0
    for attempt in range(12):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=float(rng.uniform(4, 12)) if kills < 2 else 300)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
        break
    assert kills >= 2  # the test exercised resumption
    assert_same(outputs(run), outputs(ref))
    models = [json.loads((run / f"gen_{g:03d}" / "manifest.json").read_text())["model"] for g in range(3)]
    assert models == ["tiny", "small", "small"]


def test_two_processes_never_share_a_run_directory(reference):
    from collapse.store import RunDir

    cfg, ref = reference
    with RunDir(ref).lock():
        with pytest.raises(DataError, match="in use by another collapse process"):
            loop.run(cfg, ref)


@pytest.mark.reports
def test_non_finite_loss_stops_with_generation_and_step(tmp_path, monkeypatch):
    real, calls = train.train_chunk, []

    def nan_in_generation_1(*args):
        calls.append(1)
        state, loss = real(*args)
        if len(calls) > 2:  # generation 0: 2 chunks of 4 steps
            loss = loss.at[:, 1].set(np.nan)
        return state, loss

    monkeypatch.setattr(train, "train_chunk", nan_in_generation_1)
    with pytest.raises(FloatingPointError, match="generation 1: non-finite training loss at step 2"):
        loop.run(tiny_config(), tmp_path)
    assert (tmp_path / "gen_000" / "score.done").exists() and "| 0 |" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "gen_001" / "train.done").exists()
