"""The run directory: every file written atomically (temporary file, then rename), completion markers last.

    <run>/config.json                 the resolved config (checked on resume)
    <run>/human/{train,valid,test,fresh}.npy, tokenizer.json, reference.json (metrics of the human data)
    <run>/human/token_counts.npy, buckets.npy (+ grammar: unigram_true.npy, true_logprob.npy)  tail references
    <run>/gen_003/checkpoint/         model parameters of all replicates (orbax)
    <run>/gen_003/rep_00/train_provenance.npy, train_index.npy   who trained generation 3 (see regimes.py)
    <run>/gen_003/rep_00/samples.npy, provenance.npy             its synthetic corpus [N, T] and [N] (= 3)
    <run>/gen_003/rep_00/ppl_gen0.npy, ppl_self.npy, ppl_test.npy, token_counts.npy, true_logprob.npy
                                      per-sequence / per-type arrays of the score phase
    <run>/gen_003/manifest.json       training-set composition per replicate
    <run>/gen_003/metrics.jsonl       this generation's metric rows
    <run>/gen_003/{train,sample,score}.done   phase markers (JSON: seconds, device)
    <run>/metrics.jsonl               all finished generations' rows, rebuilt atomically after each one
    <run>/last_seen.npy               [R, V] the last generation whose samples held each type (-1: none)
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from collapse.config import DataError

PHASES = ("train", "sample", "score")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_array(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write(path, buf.getvalue())


def load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "missing") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(path, f"corrupt .npy file ({e})") from None


def save_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "missing") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(path, f"corrupt JSON ({e})") from None


class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).absolute()

    # --- layout
    def human(self, split: str) -> Path:
        return self.path / "human" / f"{split}.npy"

    @property
    def human_reference(self) -> Path:
        return self.path / "human" / "reference.json"

    @property
    def last_seen(self) -> Path:
        return self.path / "last_seen.npy"

    @property
    def tokenizer(self) -> Path:
        return self.path / "human" / "tokenizer.json"

    def gen(self, g: int) -> Path:
        return self.path / f"gen_{g:03d}"

    def rep(self, g: int, r: int) -> Path:
        return self.gen(g) / f"rep_{r:02d}"

    def checkpoint(self, g: int) -> Path:
        return self.gen(g) / "checkpoint"

    # --- phase markers
    def marker(self, g: int, phase: str) -> Path:
        assert phase in PHASES, phase
        return self.gen(g) / f"{phase}.done"

    def is_done(self, g: int, phase: str) -> bool:
        return self.marker(g, phase).exists()

    def mark_done(self, g: int, phase: str, info: dict[str, Any]) -> None:
        save_json(self.marker(g, phase), info)

    def finished_generations(self) -> list[int]:
        """Generations whose last phase is marked done, in order."""
        gens = sorted(int(p.name[4:]) for p in self.path.glob("gen_[0-9][0-9][0-9]") if p.is_dir())
        return [g for g in gens if self.is_done(g, PHASES[-1])]

    # --- checkpoints (orbax; parameters of all replicates, leading axis R)
    def save_params(self, g: int, params: Any) -> None:
        import orbax.checkpoint as ocp

        path = self.checkpoint(g)
        if path.exists():  # a half-finished earlier attempt: the train marker is missing, so redo it
            import shutil

            shutil.rmtree(path)
        with ocp.StandardCheckpointer() as ckpt:
            ckpt.save(path, params)
            ckpt.wait_until_finished()

    def load_params(self, g: int, abstract: Any) -> Any:
        import orbax.checkpoint as ocp

        path = self.checkpoint(g)
        if not path.exists():
            raise DataError(path, "missing checkpoint")
        try:
            with ocp.StandardCheckpointer() as ckpt:
                return ckpt.restore(path, abstract)
        except Exception as e:  # orbax raises many types for truncated or foreign checkpoints
            raise DataError(path, f"unreadable checkpoint ({type(e).__name__}: {e})") from None

    # --- metrics
    def write_metrics(self, g: int, rows: list[dict[str, Any]]) -> None:
        """Write generation g's rows, then rebuild the run's metrics.jsonl from all finished generations."""
        atomic_write(self.gen(g) / "metrics.jsonl", _jsonl(rows))

    def rebuild_metrics(self) -> None:
        rows = [row for g in self.finished_generations() for row in self.read_metrics(g)]
        atomic_write(self.path / "metrics.jsonl", _jsonl(rows))

    def read_metrics(self, g: int | None = None) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl" if g is None else self.gen(g) / "metrics.jsonl"
        if not path.exists():
            return []
        rows = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise DataError(f"{path}:{i}", "corrupt metrics line") from None
        return rows


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()
