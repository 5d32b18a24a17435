"""The files of a run directory: written atomically (a temporary file, then a rename: readers see the old file or
the whole new one) with the permissions `open` gives, read back strictly (a missing or corrupt file raises
`DataError` naming it), JSON strict (undefined values null), and metrics.jsonl's one writer (`jsonl`)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import tempfile
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path
from typing import Any

import numpy as np

from collapse.errors import DataError


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


METRIC_FIELDS = ("generation", "replicate", "metric", "value", "seed")  # of a metric row, in order


def metric_row(generation: int, replicate: int, metric: str, value: float, seed: int) -> dict[str, Any]:
    """One metrics.jsonl row; an undefined value (nan: e.g. distinct-4 of 3-token sequences, a Zipf slope of
    fewer than two ranks) is None (null), never a number that reads as collapse."""
    value = value if math.isfinite(value) else None
    return {"generation": generation, "replicate": replicate, "metric": metric, "value": value, "seed": seed}


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (metrics.jsonl); DataError naming the file and line if one is corrupt."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(path, "missing") from None
    rows = []
    for i, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise DataError(f"{path}:{i}", "corrupt metrics line") from None
    return rows
