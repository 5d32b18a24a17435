"""A phase of a generation: loaded if its marker says done and its outputs are intact, else computed and marked
(`phase`); what a phase wrote (`Outputs`), for the marker's digests; and a generation's model as a handle whose
parameters are read from the checkpoint only when a later phase first needs them (`Model`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from collapse.errors import DataError
from collapse.files import save_array, save_json
from collapse.store import LAZY

log = logging.getLogger("collapse")


class Outputs:
    """The files a phase writes, each recorded for its marker's digests."""

    def __init__(self):
        self.paths: list[Path] = []

    def array(self, path: Path, array: np.ndarray) -> None:
        save_array(path, array)
        self.paths.append(path)

    def json(self, path: Path, obj: Any) -> None:
        save_json(path, obj)
        self.paths.append(path)

    def written(self, path: Path) -> None:
        """A file or directory written by other means (a checkpoint, metrics.jsonl)."""
        self.paths.append(path)


def phase(study, g: int, name: str, load: Callable[[], Any], compute: Callable[[Outputs], tuple[Any, dict]]):
    """The result of phase `name` of generation g: `load()` if the phase is marked done and its outputs are
    intact, else `compute(outputs) -> (result, info)`, then marked done with the outputs' digests and `info`.
    Every phase is a deterministic function of the config and the phases before it, so recomputing is safe."""
    store = study.store
    if store.is_done(g, name):
        if store.verify(g, name, lazy=LAZY):
            try:
                result = load()
                study.loaded.add((g, name))
                return result
            except DataError:
                pass
        log.warning("%s: outputs missing or damaged; recomputing phase %s of generation %d",
                    store.marker(g, name), name, g)
    t0 = time.perf_counter()
    outputs = Outputs()
    result, info = compute(outputs)
    store.mark_done(g, name, {"seconds": time.perf_counter() - t0, "device": study.device, **info}, outputs.paths)
    return result


class Model:
    """Generation g's model for every replicate: `params` (a pytree with a leading replicate axis), trained in
    this run or read from its checkpoint on first use; `family` gives its graph and sizes."""

    def __init__(self, family: Any, params: Any = None, load: Callable[[], Any] | None = None):
        self.family, self._params, self._load = family, params, load

    @property
    def params(self) -> Any:
        if self._params is None:
            self._params = self._load()
        return self._params
