"""Several devices and several processes give the numbers of one device (CPU host-platform devices)."""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse import devices
from collapse.run import loop
from collapse.errors import ConfigError
from tests.helpers import TINY, compose_cfg


def test_one_device_layout_and_guarded_initialize(monkeypatch):
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.delenv("COLLAPSE_NUM_PROCESSES", raising=False)
    assert not devices.multiprocess_launch()
    devices.initialize()  # single-process: does nothing
    layout = devices.make_layout(3, {"train.batch_size": 7})
    assert layout.n == 1 and layout.by_replicate
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert devices.multiprocess_launch()


def test_four_devices_split_batches_or_replicates_and_train_and_sample_like_one():
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4")
    result = subprocess.run([sys.executable, "-m", "tests.multidevice_check"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    assert out["by_batch_layout"] == "batch" and out["by_batch_param_sharding"] == "P()"
    assert out["by_replicate_layout"] == "replicate" and out["by_replicate_param_sharding"] == "P('devices',)"
    for name in ("by_batch", "by_replicate"):
        # float32 sums in another order (gradient all-reduce): relative differences of a few ulps per step
        assert out[f"{name}_loss_rel"] < 1e-5 and out[f"{name}_logprob_rel"] < 1e-5
        assert out[f"{name}_sample_mismatch"] == 0.0


def test_batches_that_do_not_split_over_the_devices_are_refused(monkeypatch):
    class Four:
        size = 4

    monkeypatch.setattr(devices.jax, "devices", lambda: [object()] * 4)
    monkeypatch.setattr(devices, "Mesh", lambda *a, **k: Four())
    assert devices.make_layout(8, {"train.batch_size": 6}).by_replicate
    assert not devices.make_layout(1, {"train.batch_size": 8, "sample.batch_size": 64}).by_replicate
    with pytest.raises(ConfigError, match="sample.batch_size: 62 does not split over the 4 devices"):
        devices.make_layout(1, {"train.batch_size": 8, "sample.batch_size": 62})


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_layout_follows_the_config_rule_splits_evenly(monkeypatch, n):
    """make_layout accepts exactly what validation (`config.splits_evenly`) accepts, sharding replicates
    whenever they divide evenly."""
    from collapse.validate import splits_evenly

    class Mesh:
        size = n

    monkeypatch.setattr(devices.jax, "devices", lambda: [object()] * n)
    monkeypatch.setattr(devices, "Mesh", lambda *a, **k: Mesh())
    for replicates in range(1, 9):
        for batches in ({"train.batch_size": 12}, {"train.batch_size": 8, "sample.batch_size": 6}, {}):
            if not splits_evenly(n, replicates, batches):
                with pytest.raises(ConfigError, match="does not split over"):
                    devices.make_layout(replicates, batches)
                continue
            assert devices.make_layout(replicates, batches).by_replicate == (replicates % n == 0)


def test_two_processes_run_the_study_of_one(tmp_path):
    """Replicates sharded over two processes (one device each): the numbers of one process."""
    overrides = [*TINY, "replicates=2", "generations=1"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for i in range(2):
        env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                   COLLAPSE_NUM_PROCESSES="2", COLLAPSE_PROCESS_ID=str(i))
        procs.append(subprocess.Popen([sys.executable, "-m", "collapse.cli", *overrides, f"out_dir={tmp_path / 'mp'}"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    loop.run(compose_cfg(*overrides), tmp_path / "one")
    _assert_same_metrics(tmp_path / "mp", tmp_path / "one")


def _assert_same_metrics(run_a, run_b) -> None:
    rows = [[json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (run_a, run_b)]
    assert [(r["generation"], r["replicate"], r["metric"]) for r in rows[0]] == \
           [(r["generation"], r["replicate"], r["metric"]) for r in rows[1]]
    np.testing.assert_allclose([r["value"] for r in rows[0]], [r["value"] for r in rows[1]], rtol=1e-4)


def test_a_study_on_a_cpu_split_into_two_devices_gives_the_numbers_of_one(tmp_path):
    """cpu_devices=2 (batches split over two CPU devices, gradients all-reduced): the metrics of one device."""
    overrides = [*TINY, "generations=1", "cpu_devices=2"]
    result = subprocess.run([sys.executable, "-m", "collapse.cli", *overrides, f"out_dir={tmp_path / 'two'}"],
                            env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 x cpu" in (tmp_path / "two" / "report.md").read_text()
    loop.run(compose_cfg(*overrides), tmp_path / "one")  # this process has one device (tests/conftest.py)
    assert jax.device_count() == 1
    _assert_same_metrics(tmp_path / "two", tmp_path / "one")


def test_cpu_device_count_takes_one_per_core_that_splits_the_work(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    assert devices.cpu_device_count(0, 1, {"train.batch_size": 64, "sample.batch_size": 1024}) == 4
    assert devices.cpu_device_count(0, 3, {"train.batch_size": 7}) == 3  # replicates split over 3
    assert devices.cpu_device_count(0, 3, {"train.batch_size": 64}) == 4  # batches split over 4
    assert devices.cpu_device_count(0, 1, {"train.batch_size": 7}) == 1
    assert devices.cpu_device_count(5, 1, {"train.batch_size": 7}) == 5  # asked for: validate() checks it
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert devices.cpu_device_count(0, 1, {"train.batch_size": 64}) == devices.MAX_AUTO_CPU_DEVICES


def test_over_replicates_is_a_map_over_the_leading_axis():
    """lax.map on one CPU device, vmap elsewhere: either way replicate r gets exactly its own slices."""
    a_RNK = jax.random.normal(jax.random.key(0), (3, 5, 4))
    b_RK = jax.random.normal(jax.random.key(1), (3, 4))
    fn = lambda a_NK, b_K: jnp.tanh(a_NK @ b_K).sum()  # noqa: E731
    out_R = jax.jit(lambda a, b: devices.over_replicates(fn, devices.single(), a, b))(a_RNK, b_RK)
    assert out_R.shape == (3,)
    for r in range(3):
        np.testing.assert_allclose(out_R[r], fn(a_RNK[r], b_RK[r]), rtol=1e-6)
