"""The run directory: every file written atomically (temporary file, then rename), completion markers last.

    <run>/config.json                 the resolved config (checked on resume)
    <run>/human/{train,valid,test,fresh}.npy, tokenizer.json   the human data (text: shared by the replicates)
    <run>/human/rep_00/{train,valid,test,fresh}.npy             grammar: each replicate's own human data
    <run>/human/[rep_00/]token_counts.npy, buckets.npy, reference_counts.npy (+ grammar: unigram_true.npy,
                                      true_logprob.npy)  tail references
    <run>/human/reference.json        metrics of the human data: one row per human dataset (per replicate
                                      on the grammar)
    <run>/gen_003/checkpoint/         model parameters of all replicates (orbax)
    <run>/gen_003/train_state/        mid-generation training state (train.checkpoint_every > 0; removed when done)
    <run>/gen_003/rep_00/train_provenance.npy, train_index.npy   who trained generation 3 (see regimes.py)
    <run>/gen_003/rep_00/samples.npy, provenance.npy             its synthetic corpus [N, T] and [N] (= 3)
    <run>/gen_003/rep_00/candidates.npy, curate_scores.npy, curate_kept.npy, curate_scores_kept.npy
                                      with curation: the candidates drawn, their scores, the kept ones (README)
    <run>/gen_003/rep_00/ppl_gen0.npy, ppl_self.npy, ppl_test.npy, token_counts.npy, true_logprob.npy
                                      per-sequence / per-type arrays of the score phase
    <run>/gen_003/rep_00/train_label_source.npy, train_prompt_row.npy   label sources; continuation: prompt rows
    <run>/gen_003/manifest.json       training-set composition per replicate, the model option and its parameters
    <run>/gen_003/provenance.json     the training set's lineage (collapse.provenance)
    <run>/gen_003/metrics.jsonl       this generation's metric rows
    <run>/gen_003/{train,sample,score}.done   phase markers (JSON: seconds, device, digests of the outputs)
    <run>/metrics.jsonl               all finished generations' rows, rebuilt atomically after each one
    <run>/last_seen.npy               [R, V] the last generation whose samples held each type (-1: none)
Analytic families (`collapse.families.analytic`) run every generation in one program: no gen_* directories;
<run>/generations.done (JSON: generations, seconds, device) marks all of them done at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path
from typing import Any

import numpy as np

from collapse.errors import DataError

PHASES = ("train", "sample", "score")
log = logging.getLogger("collapse")


def is_writer() -> bool:
    """Only process 0 of a multi-process run writes files (orbax checkpoints excepted: all take part)."""
    jax = sys.modules.get("jax")
    return jax is None or jax.process_index() == 0


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part. The file gets
    the permissions an ordinary `open` would give it (0666 less the umask: collaborators can read a run on a
    shared cluster), not `mkstemp`'s private 0600."""
    if not is_writer():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def digest(path: Path) -> str | None:
    """SHA-256 of a file, or of a directory's files and their relative names; None if it does not exist."""
    if not path.exists():
        return None
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else "").encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def _barrier(name: str) -> None:
    """All processes of a multi-process run meet here (no-op in a single process)."""
    jax = sys.modules.get("jax")
    if jax is not None and jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


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


def _strict(obj: Any) -> Any:
    """`obj` with every non-finite float (an undefined value) as None, so the JSON written is strict (no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def save_json(path: Path, obj: Any) -> None:
    """`obj` as strict, sorted, indented JSON (undefined values null)."""
    atomic_write(path, (json.dumps(_strict(obj), indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "missing") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(path, f"corrupt JSON ({e})") from None


def gen_name(g: int) -> str:
    """Generation g's directory name: at least 3 digits (gen_003, gen_1000)."""
    return f"gen_{g:03d}"


def rep_name(r: int) -> str:
    """Replicate r's directory name: at least 2 digits (rep_00, rep_100)."""
    return f"rep_{r:02d}"


def _numbered(parent: Path, name: Callable[[int], str]) -> list[int]:
    """The indices i, in order, of the subdirectories of `parent` named exactly `name(i)`."""
    found = []
    if parent.is_dir():
        for p in parent.iterdir():
            digits = p.name.rpartition("_")[2]
            if digits.isascii() and digits.isdigit() and name(int(digits)) == p.name and p.is_dir():
                found.append(int(digits))
    return sorted(found)


class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).absolute()

    # --- layout
    def human(self, split: str, replicate: int | None = None) -> Path:
        """`human/<split>.npy`, or `human/rep_XX/<split>.npy` where every replicate has its own human data."""
        folder = self.path / "human"
        return (folder if replicate is None else folder / rep_name(replicate)) / f"{split}.npy"

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
        return self.path / gen_name(g)

    def rep(self, g: int, r: int) -> Path:
        return self.gen(g) / rep_name(r)

    def generations(self) -> list[int]:
        """Generations that have a directory, in order (gen_1000 included: names are parsed, not globbed)."""
        return _numbered(self.path, gen_name)

    def human_replicates(self) -> list[int]:
        """Replicates with their own human data (`human/rep_XX`; the grammar), in order."""
        return _numbered(self.path / "human", rep_name)

    def replicates(self, g: int) -> list[int]:
        """Replicates of generation g that have a directory, in order (rep_100 included)."""
        return _numbered(self.gen(g), rep_name)

    def checkpoint(self, g: int) -> Path:
        return self.gen(g) / "checkpoint"

    # --- phase markers
    def marker(self, g: int, phase: str) -> Path:
        assert phase in PHASES, phase
        return self.gen(g) / f"{phase}.done"

    def is_done(self, g: int, phase: str) -> bool:
        return self.marker(g, phase).exists()

    def mark_done(self, g: int, phase: str, info: dict[str, Any], outputs: list[Path]) -> None:
        """Mark a phase done, recording a digest of each output (file or directory) it wrote."""
        if not is_writer():
            return
        digests = {str(p.relative_to(self.path)): digest(p) for p in outputs}
        save_json(self.marker(g, phase), {**info, "outputs": digests})

    def verify(self, g: int, phase: str, lazy: tuple[str, ...] = (), only: Path | None = None) -> bool:
        """True if the phase is marked done and every output it recorded is still there, unchanged; outputs
        named in `lazy` (large ones such as the checkpoint) are left for their reader to check with `only`,
        which checks that one output alone."""
        try:
            outputs = load_json(self.marker(g, phase)).get("outputs")
        except DataError:
            return False
        if not isinstance(outputs, dict):
            return False
        if only is not None:
            rel = str(only.relative_to(self.path))
            return rel in outputs and digest(only) == outputs[rel]
        return all(digest(self.path / rel) == value for rel, value in outputs.items() if Path(rel).name not in lazy)

    @property
    def program_marker(self) -> Path:
        """Written when one compiled program has run every generation (analytic families)."""
        return self.path / "generations.done"

    def finished_generations(self) -> list[int]:
        """Generations whose last phase is marked done, in order."""
        if self.program_marker.exists():
            return list(range(load_json(self.program_marker)["generations"]))
        return [g for g in self.generations() if self.is_done(g, PHASES[-1])]

    # --- one writer at a time
    @contextlib.contextmanager
    def lock(self):
        """Hold `<run>/.lock` (an flock, released even on SIGKILL) so two jobs never write one directory."""
        import fcntl

        if not is_writer():
            yield self
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                raise DataError(self.path, f"in use by another collapse process ({f.read().strip() or '?'})") from None
            f.truncate(0)
            f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
            try:
                yield self
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # --- checkpoints (orbax; parameters of all replicates, leading axis R)
    def save_params(self, g: int, params: Any) -> None:
        import orbax.checkpoint as ocp

        path = self.checkpoint(g)
        if path.exists() and is_writer():  # a half-finished earlier attempt: the train marker is missing
            import shutil

            shutil.rmtree(path)
        _barrier("collapse-save-params")
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

    def train_checkpoints(self, g: int, every: int, abstract: Any):
        """Mid-generation checkpoints of generation g's training (`collapse.train.Checkpoints`), keeping the
        newest only; an unreadable one is ignored (training restarts, with the same result)."""
        import orbax.checkpoint as ocp

        from collapse.train import Checkpoints

        options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
        manager = ocp.CheckpointManager(self.gen(g) / "train_state", options=options)
        restored, step = None, manager.latest_step()
        if step is not None:
            try:
                restored = (step, manager.restore(step, args=ocp.args.StandardRestore(abstract)))
            except Exception as e:  # truncated or foreign: start this generation's training over
                log.warning("%s: unreadable mid-generation checkpoint (%s); training generation %d from its start",
                            self.gen(g) / "train_state", type(e).__name__, g)

        def save(step: int, tree: Any) -> None:
            manager.save(step, args=ocp.args.StandardSave(tree), force=True)
            manager.wait_until_finished()

        return Checkpoints(every, save, restored)

    def drop_train_checkpoints(self, g: int) -> None:
        import shutil

        shutil.rmtree(self.gen(g) / "train_state", ignore_errors=True)

    # --- metrics
    def write_metrics(self, g: int, rows: list[dict[str, Any]]) -> None:
        """Write generation g's rows, then rebuild the run's metrics.jsonl from all finished generations."""
        atomic_write(self.gen(g) / "metrics.jsonl", jsonl(rows))

    def rebuild_metrics(self, upto: int | None = None) -> None:
        """The run's metrics.jsonl from the rows of every finished generation (up to generation `upto`)."""
        gens = [g for g in self.finished_generations() if upto is None or g <= upto]
        self.write_run_metrics([row for g in gens for row in self.read_metrics(g)])

    def write_run_metrics(self, rows: list[dict[str, Any]]) -> None:
        atomic_write(self.path / "metrics.jsonl", jsonl(rows))

    def read_metrics(self, g: int | None = None, required: bool = False) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl" if g is None else self.gen(g) / "metrics.jsonl"
        if not path.exists():
            if required:
                raise DataError(path, "missing")
            return []
        rows = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise DataError(f"{path}:{i}", "corrupt metrics line") from None
        return rows


METRIC_FIELDS = ("generation", "replicate", "metric", "value", "seed")  # of a metric row, in order


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    """Rows as strict JSON, one object per line as `json.dumps` writes it, an undefined value (None, NaN, ±inf;
    e.g. survival in an empty bucket) as null: the one writer of metrics.jsonl. Metric rows (`METRIC_FIELDS`)
    are formatted directly, several times faster than `json.dumps`: a long analytic study has hundreds of
    thousands of rows."""
    return "".join([_metric_line(r) if tuple(r) == METRIC_FIELDS else _line(r) for r in rows]).encode()


def _metric_line(r: dict[str, Any]) -> str:
    return (f'{{"generation": {r["generation"]}, "replicate": {r["replicate"]}, "metric": {_json_string(r["metric"])}, '
            f'"value": {_json_value(r["value"])}, "seed": {r["seed"]}}}\n')


def _json_value(v: Any) -> str:
    if type(v) is float:  # the common case first
        return repr(v) if math.isfinite(v) else "null"
    if v is None or isinstance(v, float) and not math.isfinite(v):
        return "null"
    return json.dumps(v)


def _line(row: dict[str, Any]) -> str:
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    return json.dumps(clean, allow_nan=False) + "\n"
