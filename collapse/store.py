"""The run directory: its layout (the one home of its file names: `RunDir`'s paths and `ARRAYS`; what each file
holds is described once, in docs/run-directory.md), phase markers with digests, orbax checkpoints, metrics.jsonl
and the lock; every file written atomically (`collapse.files`), markers last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collapse.errors import DataError
from collapse.files import atomic_write, digest, is_writer, jsonl, load_json, read_jsonl, save_json

PHASES = ("train", "sample", "score")
log = logging.getLogger("collapse")


def _barrier(name: str) -> None:
    """All processes of a multi-process run meet here (no-op in a single process)."""
    jax = sys.modules.get("jax")
    if jax is not None and jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


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


# A replicate's arrays of a generation (gen_NNN/rep_NN/<name>.npy), by the phase that writes them: the one list
# of their names, which every writer and reader goes through (`RunDir.array`).
ARRAYS = {
    "train": ("train_provenance", "train_index", "train_label_source", "train_prompt_row", "train_lab",
              "online_tokens", "online_start"),
    "sample": ("samples", "provenance", "prompt_index", "candidates", "curate_scores", "curate_kept",
               "curate_scores_kept", "curate_detector_accuracy", "curate_detector_used", "withheld"),
    "score": ("ppl_gen0", "ppl_self", "ppl_test", "token_counts", "true_logprob", "fact_counts",
              "closed_book_prob"),
}
_ARRAY_NAMES = {name for names in ARRAYS.values() for name in names}
LAZY = ("checkpoint", "optimizer")  # outputs too large to digest at every resume: their reader checks them


class RunDir:
    """Paths and atomic reads/writes of one run directory (the layout above)."""

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

    def array(self, g: int, r: int, name: str) -> Path:
        """Replicate r's array `name` of generation g (one of `ARRAYS`)."""
        if name not in _ARRAY_NAMES:
            raise KeyError(f"{name!r} is not an array of the run-directory layout (store.ARRAYS)")
        return self.rep(g, r) / f"{name}.npy"

    def manifest(self, g: int) -> Path:
        """Generation g's training-set composition per replicate, its model option and parameter count."""
        return self.gen(g) / "manifest.json"

    def provenance(self, g: int) -> Path:
        """Generation g's training sets' lineage (`collapse.provenance.generation_record`)."""
        return self.gen(g) / "provenance.json"

    def train_loss(self, g: int) -> Path:
        return self.gen(g) / "train_loss.npy"

    def metrics_file(self, g: int | None = None) -> Path:
        """Generation g's metric rows, or (None) the run's, every finished generation's."""
        return self.path / "metrics.jsonl" if g is None else self.gen(g) / "metrics.jsonl"

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
    def optimizer_state(self, g: int) -> Path:
        """Generation g's optimiser state (regime=online carries it to generation g + 1)."""
        return self.gen(g) / "optimizer"

    def save_params(self, g: int, params: Any) -> None:
        self.save_tree(self.checkpoint(g), params)

    def load_params(self, g: int, abstract: Any) -> Any:
        return self.load_tree(self.checkpoint(g), abstract)

    def save_tree(self, path: Path, tree: Any) -> None:
        """An orbax checkpoint of `tree` at `path` (a half-finished earlier attempt there is replaced)."""
        import orbax.checkpoint as ocp

        if path.exists() and is_writer():  # a half-finished earlier attempt: the train marker is missing
            import shutil

            shutil.rmtree(path)
        _barrier("collapse-save-params")
        with ocp.StandardCheckpointer() as ckpt:
            ckpt.save(path, tree)
            ckpt.wait_until_finished()

    def load_tree(self, path: Path, abstract: Any) -> Any:
        import orbax.checkpoint as ocp

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
        atomic_write(self.metrics_file(g), jsonl(rows))

    def rebuild_metrics(self, upto: int | None = None) -> None:
        """The run's metrics.jsonl from the rows of every finished generation (up to generation `upto`)."""
        gens = [g for g in self.finished_generations() if upto is None or g <= upto]
        self.write_run_metrics([row for g in gens for row in self.read_metrics(g)])

    def write_run_metrics(self, rows: list[dict[str, Any]]) -> None:
        atomic_write(self.metrics_file(), jsonl(rows))

    def read_metrics(self, g: int | None = None, required: bool = False) -> list[dict[str, Any]]:
        """Generation g's metric rows (None: the run's); a missing file reads as none unless `required`."""
        path = self.metrics_file(g)
        if not path.exists() and not required:
            return []
        return read_jsonl(path)
