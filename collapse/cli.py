"""The `collapse` command: compose the Hydra config, convert it to dataclasses, validate, run.

    uv run collapse                                   # the default study
    uv run collapse data=text data.path=corpus.txt regime=accumulate generations=8
    uv run collapse -m regime=replace,accumulate seed=0,1,2
    uv run collapse --help                            # the options and keys (conf/hydra/help/collapse.yaml)
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from collapse.config import Config
from collapse.families import AnalyticConfig
from collapse.errors import ConfigError, DataError
from collapse.hydra_config import conf_dir, from_hydra, register_configs
from collapse.validate import batch_sizes, validate

log = logging.getLogger("collapse")


def _only_hydra_files(path: Path) -> bool:
    """True if `path` holds nothing but what Hydra wrote before the job started (.hydra/, the job log)."""
    return all(p.name == ".hydra" or p.suffix == ".log" for p in path.iterdir())


def set_up_jax(cfg: Config) -> None:
    """The process-wide JAX settings a study runs under, before JAX's first operation: the CPU host split into
    one device per core (`cpu_devices`), `jax.distributed` for multi-process launches, and the persistent
    compilation cache (`compilation_cache`, unless JAX_COMPILATION_CACHE_DIR already names one). The command
    calls it; a Python caller of `collapse.loop.run` may, to get the same."""
    import jax

    from collapse import devices

    if not isinstance(cfg.model, AnalyticConfig):
        devices.use_cpu_devices(cfg.cpu_devices, cfg.replicates, batch_sizes(cfg))
    devices.initialize()
    if cfg.compilation_cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", str(Path(cfg.compilation_cache).expanduser()))


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="config")
def _main(dcfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        cfg = from_hydra(dcfg)
        validate(cfg)  # before importing JAX: a bad value is refused at once
        set_up_jax(cfg)
        from collapse.run import loop

        loop.run(cfg, out_dir)
    except (ConfigError, DataError) as e:
        kind = "config error" if isinstance(e, ConfigError) else "input error"
        log.error("%s: %s", kind, e)
        if out_dir.exists() and _only_hydra_files(out_dir):  # a new run directory: leave nothing behind
            logging.shutdown()
            shutil.rmtree(out_dir, ignore_errors=True)
        print(f"collapse: {kind}: {e}", file=sys.stderr)
        sys.exit(2)
    except FloatingPointError as e:
        log.error("%s", e)
        print(f"collapse: {e}", file=sys.stderr)
        sys.exit(3)


def main() -> None:
    register_configs()
    _main()


if __name__ == "__main__":
    main()
