"""Devices: one mesh over every device of every process, and where replicate-stacked arrays live on it.

Replicates are independent, so when R is a multiple of the device count each device holds whole
replicates (no communication at all). Otherwise each batch is split across devices (data parallel: the
parameters are replicated and XLA all-reduces the gradients). The host code is the same in every process
(every host array is a deterministic function of the config), so a global array is built from the host
copy each process holds, and results come back to every process with `to_host`.

Multi-process runs (several hosts, or several processes on one) start with `initialize()`, which calls
`jax.distributed.initialize()` only when launched that way: a SLURM job step with more than one task
(everything read from SLURM's environment), or by hand with JAX_COORDINATOR_ADDRESS=host:port,
COLLAPSE_NUM_PROCESSES=n and COLLAPSE_PROCESS_ID=i in each process. Single-process runs are untouched.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from collapse.errors import ConfigError
from collapse.validate import splits_evenly

log = logging.getLogger("collapse")


def multiprocess_launch() -> bool:
    """True when this process is one of several of one job."""
    return int(os.environ.get("COLLAPSE_NUM_PROCESSES", "1")) > 1 or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def initialize() -> None:
    """`jax.distributed.initialize()` for multi-process launches (idempotent), nothing otherwise.

    Call it before any other JAX work: it must come before the backends start."""
    if not multiprocess_launch() or jax.distributed.is_initialized():
        return
    if os.environ.get("JAX_PLATFORMS", "") == "cpu":  # CPU collectives across processes
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if "COLLAPSE_NUM_PROCESSES" in os.environ:
        jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"],
                                   num_processes=int(os.environ["COLLAPSE_NUM_PROCESSES"]),
                                   process_id=int(os.environ["COLLAPSE_PROCESS_ID"]))
    else:
        jax.distributed.initialize()  # SLURM: coordinator, process count and id from its environment
    log.info("process %d of %d, %d of %d devices local", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())


def over_replicates(fn, layout: "Layout", *per_replicate):
    """`fn` applied to each replicate's slice of `per_replicate` (leading axis R), in one program.

    `vmap` on accelerators. On CPU devices replicates run one after another (`lax.map`): there a replicate
    axis buys no throughput (the cores are already busy), and XLA's CPU matmuls with it as an extra batch
    axis run slower, decoding from the KV cache most (results/benchmark.md). When the replicates are spread
    over several CPU devices, each device maps over its own (`shard_map`, no communication). All give the
    same numbers."""
    if jax.default_backend() != "cpu":
        return jax.vmap(fn)(*per_replicate)
    one_by_one = lambda *xs: jax.lax.map(lambda x: fn(*x), xs)  # noqa: E731
    if layout.n == 1 or not layout.by_replicate:  # (batch-sharded: XLA partitions each replicate's step)
        return one_by_one(*per_replicate)
    spec = PartitionSpec("devices")
    return jax.shard_map(one_by_one, mesh=layout.mesh, in_specs=spec, out_specs=spec, check_vma=False)(
        *per_replicate)


MAX_AUTO_CPU_DEVICES = 8


def cpu_device_count(requested: int, replicates: int, batch_sizes: dict[str, int]) -> int:
    """How many XLA devices to split a CPU host into: `requested`, or for 0 the most (one per core, at most
    `MAX_AUTO_CPU_DEVICES`) over which the replicates or else every batch in `batch_sizes` split evenly.

    Each CPU device runs its share on its own core, with data parallelism across them: XLA's CPU runtime
    keeps several cores busy on one program's small operations only part of the time, so one device per
    core trains and samples faster than one device using every core (results/benchmark.md)."""
    if requested:
        return requested
    cores = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                MAX_AUTO_CPU_DEVICES)
    return next(n for n in range(cores, 0, -1) if splits_evenly(n, replicates, batch_sizes))


def use_cpu_devices(requested: int, replicates: int, batch_sizes: dict[str, int]) -> None:
    """Split the CPU host into `cpu_device_count(...)` XLA devices (`jax_num_cpu_devices`).

    Only before JAX's first operation; afterwards (e.g. a second study in one Python process) the existing
    devices are kept. With `requested` = 0 an explicit XLA_FLAGS=--xla_force_host_platform_device_count
    and multi-process launches (one device per process) are left alone."""
    auto_off = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "") or multiprocess_launch()
    if requested == 0 and auto_off:
        return
    n = cpu_device_count(requested, replicates, batch_sizes)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backends already started
        if jax.default_backend() == "cpu" and jax.device_count() != n:
            log.info("JAX started with %d CPU device(s) already; keeping them (wanted %d)", jax.device_count(), n)


@dataclass(frozen=True)
class Layout:
    """How arrays with a leading replicate axis R are spread over the mesh's single axis "devices"."""

    mesh: Mesh
    by_replicate: bool  # True: shard axis 0 (R); False: shard the batch axis, replicate parameters

    @property
    def n(self) -> int:
        return self.mesh.size

    @property
    def batch_split(self) -> int:
        """Devices each batch is split over (1 when whole replicates sit on each device)."""
        return 1 if self.by_replicate else self.n

    def slice_size(self, batch: int, n: int) -> int:
        """Rows per fixed-size slice of n rows: at most `batch` (no more than n), rounded up to a multiple of the
        devices sharing each slice, so one compiled program serves every slice (the last one padded)."""
        return -(-min(batch, n) // self.batch_split) * self.batch_split

    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def params(self) -> NamedSharding:
        """Parameters and optimizer state `[R, ...]`."""
        return NamedSharding(self.mesh, PartitionSpec("devices") if self.by_replicate else PartitionSpec())

    def batch(self, batch_axis: int) -> NamedSharding:
        """Per-replicate batches `[R, ..., B, ...]` with B at `batch_axis`."""
        if self.by_replicate:
            return NamedSharding(self.mesh, PartitionSpec("devices"))
        spec = [None] * (batch_axis + 1)
        spec[batch_axis] = "devices"
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def put(self, tree, sharding: NamedSharding):
        """Place host or device arrays on the mesh; every process passes the same values."""
        if jax.process_count() == 1:
            return jax.device_put(tree, sharding)

        def one(x):
            host = to_host(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

        return jax.tree.map(one, tree)


def abstract(shapes, sharding: NamedSharding):
    """`jax.ShapeDtypeStruct`s of `shapes` (e.g. from `jax.eval_shape`) placed with `sharding`: what orbax
    restores into."""
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def single() -> Layout:
    """The first device alone (the default outside the loop)."""
    return Layout(Mesh(np.array(jax.devices()[:1]), ("devices",)), by_replicate=True)


def make_layout(replicates: int, batch_sizes: dict[str, int]) -> Layout:
    """Shard replicates when they divide evenly over the devices, else batches (each of `batch_sizes` —
    {config key: size} — must then divide evenly); a ConfigError names the key otherwise."""
    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("devices",))
    n = len(devices)
    if not splits_evenly(n, replicates, batch_sizes):
        key, size = next((k, s) for k, s in batch_sizes.items() if s % n)
        raise ConfigError(key, f"{size} does not split over the {n} devices: make it a multiple of {n}, "
                          f"or make replicates ({replicates}) a multiple of {n}")
    return Layout(mesh, by_replicate=replicates % n == 0)


def to_host(x) -> np.ndarray:
    """A (possibly sharded, possibly multi-process) array as a NumPy array in every process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
