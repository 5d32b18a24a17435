"""Test-wide settings: JAX on the CPU, no network for Hugging Face libraries, and one persistent XLA
compilation cache shared by the test processes (pytest-xdist workers and the CLI subprocesses), so a
program compiled by one is loaded by the others (every program, however quick to compile); XLA flags for
compile-bound runs."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "collapse-test-xla-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def _fast_compile_flags() -> str:
    """XLA flags for the tests: they compile hundreds of tiny programs and run each for moments, so XLA's backend
    optimisation and its fusion emitters cost more than they save (studies outside the tests compile with XLA's
    defaults). XLA aborts on a flag it does not know, so each flag is kept only if this jaxlib starts with it:
    probed once per jaxlib version in a subprocess, the answer kept beside the compilation cache."""
    from importlib.metadata import version

    wanted = ["--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"]
    known = Path(f"{os.environ['JAX_COMPILATION_CACHE_DIR']}-flags-jaxlib-{version('jaxlib')}.txt")
    if not known.exists():
        ok = [flag for flag in wanted if subprocess.run(
            [sys.executable, "-c", "import jax; jax.devices()"], capture_output=True,
            env=dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flag)).returncode == 0]
        known.parent.mkdir(parents=True, exist_ok=True)
        partial = known.with_suffix(f".{os.getpid()}")
        partial.write_text(" ".join(ok))
        partial.replace(known)
    return known.read_text()


if "XLA_FLAGS" not in os.environ:  # the CLI subprocesses of the tests inherit them
    os.environ["XLA_FLAGS"] = _fast_compile_flags()

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

