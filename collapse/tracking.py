"""Optional experiment tracking (off by default): TensorBoard event files or Weights & Biases, offline-capable.

    tracking=tensorboard   event files in <run>/tensorboard   (extra: uv sync --extra tensorboard)
    tracking=wandb         a W&B run in <run>/wandb, offline unless wandb_mode=online (extra: --extra wandb)

Training losses are logged per generation (`train/loss/gen_003`, x = step, mean over replicates) and every
metric per generation (`metrics/<name>`, x = generation, mean over replicates). The run directory stays
the record; trackers are views of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse.errors import ConfigError


class Tracker:
    """No tracking."""

    def train_loss(self, generation: int, step: int, loss_R: np.ndarray) -> None:
        pass

    def metrics(self, generation: int, rows: list[dict]) -> None:
        pass

    def close(self) -> None:
        pass


def _means(rows: list[dict]) -> dict[str, float]:
    by_name: dict[str, list[float]] = {}
    for row in rows:
        if row["value"] is not None and np.isfinite(row["value"]):
            by_name.setdefault(row["metric"], []).append(row["value"])
    return {name: float(np.mean(v)) for name, v in by_name.items()}


class TensorBoardTracker(Tracker):
    def __init__(self, run_dir: Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ConfigError("tracking", "tracking=tensorboard needs the extra: uv sync --extra tensorboard") from None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def train_loss(self, generation, step, loss_R):
        self.writer.add_scalar(f"train/loss/gen_{generation:03d}", float(np.mean(loss_R)), step)

    def metrics(self, generation, rows):
        for name, value in _means(rows).items():
            self.writer.add_scalar(f"metrics/{name}", value, generation)
        self.writer.flush()

    def close(self):
        self.writer.close()


class WandbTracker(Tracker):
    def __init__(self, run_dir: Path, project: str, mode: str, run_id: str, config: dict):
        try:
            import wandb
        except ImportError:
            raise ConfigError("tracking", "tracking=wandb needs the extra: uv sync --extra wandb") from None
        self.run = wandb.init(project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir),
                              mode=mode, config=config)
        self.run.define_metric("generation")
        self.run.define_metric("metrics/*", step_metric="generation")

    def train_loss(self, generation, step, loss_R):
        self.run.log({f"train/loss/gen_{generation:03d}": float(np.mean(loss_R))})

    def metrics(self, generation, rows):
        self.run.log({"generation": generation, **{f"metrics/{k}": v for k, v in _means(rows).items()}})

    def close(self):
        self.run.finish()


def make_tracker(kind: str, run_dir: Path, project: str = "collapse", mode: str = "offline", run_id: str = "",
                 config: dict | None = None) -> Tracker:
    """The tracker `kind` (`tracking`: none, tensorboard, wandb); W&B names the run `run_id` (the study id, so a
    resumed study continues its run) and records `config` (config.json's content)."""
    if kind == "tensorboard":
        return TensorBoardTracker(run_dir)
    if kind == "wandb":
        return WandbTracker(run_dir, project, mode, run_id, config or {})
    return Tracker()
