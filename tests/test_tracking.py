import sys
import types

import numpy as np
import pytest

from collapse.errors import ConfigError
from collapse.tracking import Tracker, TensorBoardTracker, make_tracker
from tests.helpers import tiny_config

ROWS = [{"generation": 2, "replicate": r, "metric": "kl_true", "value": v} for r, v in ((0, 0.1), (1, 0.3))]


def test_off_by_default(tmp_path):
    assert type(make_tracker(tiny_config().tracking, tmp_path)) is Tracker


def test_tensorboard_writes_events(tmp_path):
    tracker = TensorBoardTracker(tmp_path)
    tracker.train_loss(0, 10, np.array([1.0, 2.0]))
    tracker.metrics(2, ROWS)
    tracker.close()
    events = b"".join(p.read_bytes() for p in (tmp_path / "tensorboard").iterdir())
    assert b"train/loss/gen_000" in events and b"metrics/kl_true" in events


def test_wandb_runs_offline_in_the_run_directory(tmp_path, monkeypatch):
    calls = {"log": []}

    class Run:
        def define_metric(self, *args, **kwargs):
            pass

        def log(self, values):
            calls["log"].append(values)

        def finish(self):
            calls["finished"] = True

    def init(**kwargs):
        calls["init"] = kwargs
        return Run()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    tracker = make_tracker("wandb", tmp_path, run_id="x", config={"seed": 0})
    tracker.metrics(2, ROWS)
    tracker.close()
    assert calls["init"]["mode"] == "offline" and calls["init"]["dir"] == str(tmp_path)
    assert calls["log"] == [{"generation": 2, "metrics/kl_true": pytest.approx(0.2)}] and calls["finished"]


def test_missing_extra_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(ConfigError, match="tracking=wandb needs the extra"):
        make_tracker("wandb", tmp_path, run_id="x", config={"seed": 0})
