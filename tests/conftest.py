"""Test-wide settings: JAX on the CPU, no network for Hugging Face libraries, and one persistent XLA
compilation cache shared by the test processes (pytest-xdist workers and the CLI subprocesses), so a
program compiled by one is loaded by the others; XLA's backend optimisation off."""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "collapse-test-xla-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# The tests compile hundreds of tiny programs and run each for moments: XLA's backend optimisation costs more
# than it saves in these compile-bound runs. The subprocesses inherit it; studies outside the tests compile at
# XLA's default level.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import jax  # noqa: E402

jax.devices()  # start JAX with one CPU device here, so in-process studies never split the host (cpu_devices)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _no_run_reports(request, monkeypatch):
    """Studies run in a test's own body skip redrawing report.md and its figures (seconds of matplotlib each,
    and some ninety studies); a test that reads a run's report is marked `reports`. Studies of module fixtures
    and of subprocesses write theirs as always."""
    if "reports" in request.keywords:
        return
    from collapse.run import measure

    init = measure.Reports.__init__
    monkeypatch.setattr(measure.Reports, "__init__", lambda self, store, write=None: init(self, store, _skip))


def _skip(store):
    return None
