import numpy as np
import pytest

from collapse.errors import DataError
from collapse.files import atomic_write, load_array, load_json, save_array, save_json
from collapse.store import RunDir


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write(path, b"one")
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]


def test_array_and_json_round_trip(tmp_path):
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    save_array(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_array(tmp_path / "x.npy"), x)
    save_json(tmp_path / "m.json", {"a": 1})
    assert load_json(tmp_path / "m.json") == {"a": 1}


def test_corrupt_or_missing_files_name_the_file(tmp_path):
    save_array(tmp_path / "x.npy", np.zeros((100, 10)))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataError, match="x.npy: corrupt"):
        load_array(tmp_path / "x.npy")
    with pytest.raises(DataError, match="y.npy: missing"):
        load_array(tmp_path / "y.npy")
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(DataError, match="m.json: corrupt"):
        load_json(tmp_path / "m.json")


def test_metrics_are_rebuilt_from_finished_generations(tmp_path):
    store = RunDir(tmp_path)
    for g in range(3):
        store.write_metrics(g, [{"generation": g, "replicate": 0, "metric": "m", "value": float(g)}])
        if g != 1:
            for phase in ("train", "sample", "score"):
                store.mark_done(g, phase, {"seconds": 0.0}, [store.gen(g) / "metrics.jsonl"])
    store.rebuild_metrics()
    assert [row["generation"] for row in store.read_metrics()] == [0, 2]
    assert store.finished_generations() == [0, 2]
    (tmp_path / "metrics.jsonl").write_text('{"generation": 0}\n{"gener')
    with pytest.raises(DataError, match="metrics.jsonl:2"):
        store.read_metrics()


def test_params_checkpoint_round_trip(tmp_path):
    import jax

    params = {"w": np.arange(6.0, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    store = RunDir(tmp_path)
    store.save_params(0, params)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    restored = store.load_params(0, abstract)
    np.testing.assert_array_equal(restored["w"], params["w"])
    with pytest.raises(DataError, match="gen_001/checkpoint: missing"):
        store.load_params(1, abstract)


def test_verify_detects_changed_missing_or_damaged_outputs(tmp_path):
    store = RunDir(tmp_path)
    save_array(store.rep(0, 0) / "samples.npy", np.arange(10))
    save_params_dir = store.checkpoint(0)
    save_params_dir.mkdir(parents=True)
    (save_params_dir / "shard").write_bytes(b"weights")
    store.mark_done(0, "sample", {"seconds": 1.0}, [store.rep(0, 0) / "samples.npy", save_params_dir])
    assert store.verify(0, "sample")
    save_array(store.rep(0, 0) / "samples.npy", np.arange(1, 11))  # a valid file, other numbers
    assert not store.verify(0, "sample")
    save_array(store.rep(0, 0) / "samples.npy", np.arange(10))
    (save_params_dir / "shard").write_bytes(b"weightz")
    assert not store.verify(0, "sample")
    (save_params_dir / "shard").write_bytes(b"weights")
    assert store.verify(0, "sample")
    store.marker(0, "sample").write_text("{")
    assert not store.verify(0, "sample") and not store.verify(1, "sample")


def test_undefined_metric_values_are_written_as_null(tmp_path):
    store = RunDir(tmp_path)
    store.write_metrics(0, [{"generation": 0, "replicate": 0, "metric": "survival_tail", "value": float("nan")},
                            {"generation": 0, "replicate": 0, "metric": "kl", "value": float("inf")},
                            {"generation": 0, "replicate": 0, "metric": "ok", "value": 0.5}])
    import json

    lines = (tmp_path / "gen_000" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["value"] for x in lines] == [None, None, 0.5]


def test_one_program_marks_every_generation_done(tmp_path):
    store = RunDir(tmp_path)
    assert store.finished_generations() == []
    save_json(store.program_marker, {"generations": 3})
    assert store.finished_generations() == [0, 1, 2]


def test_generation_and_replicate_directories_are_listed_past_the_name_width(tmp_path):
    store = RunDir(tmp_path)
    for g in (0, 999, 1000):
        for r in (0, 99, 100):
            store.rep(g, r).mkdir(parents=True)
        for phase in ("train", "sample", "score"):
            store.mark_done(g, phase, {"seconds": 0.0}, [])
    (tmp_path / "gen_0001").mkdir()  # not a name gen_name makes
    (tmp_path / "gen_002").write_text("")  # a file, not a generation directory
    (store.gen(0) / "rep_x").mkdir()
    assert [store.gen(g).name for g in (3, 1000)] == ["gen_003", "gen_1000"]
    assert store.generations() == store.finished_generations() == [0, 999, 1000]
    assert store.replicates(1000) == [0, 99, 100]


def test_jsonl_writes_rows_as_json_dumps_does_with_undefined_values_null():
    import json
    import math

    from collapse.files import jsonl

    def reference(rows):  # the generic writer: json.dumps per row, non-finite floats as null
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        return "".join(json.dumps({k: clean(v) for k, v in r.items()}, allow_nan=False) + "\n" for r in rows).encode()

    values = [0.1, 1 / 3, 1e-300, 1e300, -0.0, 2.5, 3, None, float("nan"), float("inf"), -float("inf"),
              np.float64(0.25), True]
    rows = [{"generation": 1000, "replicate": 100, "metric": name, "value": v, "seed": 7}
            for v in values for name in ("kl_true", 'odd "name" é')]
    other = [{"generation": 0, "value": float("nan"), "metric": "x"}, {"a": [1.5, 2], "b": "é"}]  # not metric rows
    assert jsonl(rows + other) == reference(rows + other)
    assert [json.loads(line) for line in jsonl(rows).decode().splitlines()][16]["value"] is None  # nan


def test_atomic_write_respects_the_umask(tmp_path):
    """Files are created as `open` would create them (0666 less the umask), so collaborators can read a run."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "shared.json", b"{}")
        os.umask(0o077)
        atomic_write(tmp_path / "private.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
