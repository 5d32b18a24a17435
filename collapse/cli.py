"""The `collapse` command: compose the Hydra config, convert it to dataclasses, validate, run.

    uv run collapse                                   # the default study
    uv run collapse data=text data.path=corpus.txt regime=accumulate generations=8
    uv run collapse -m regime=replace,accumulate seed=0,1,2
    uv run collapse --help                            # the options and keys (conf/hydra/help/collapse.yaml)

Every job the command would run (each of a sweep's) is composed, converted and validated before Hydra starts,
so a bad value is one line on stderr (exit status 2) and nothing is written. Hydra itself writes nothing into
a run directory but creates it (conf/config.yaml: no `hydra.output_subdir`, a console-only job log); once the
study is accepted there (`collapse.run.loop.run`'s `on_open`: the directory's lock held, the study the one it
holds or none), the command records how it was launched (`.hydra/`) and logs to `<run>/cli.log`. A refused
command thus writes nothing into an existing run, and removes only the directories it created itself.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from collapse.config import Config
from collapse.families import AnalyticConfig
from collapse.errors import ConfigError, DataError, StudyStopped
from collapse.hydra_config import conf_dir, created_here, from_hydra, jobs, register_configs
from collapse.validate import batch_sizes, validate

log = logging.getLogger("collapse")

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's; collapse.summary.last_error reads it


def set_up_jax(cfg: Config) -> None:
    """The process-wide JAX settings a study runs under, before JAX's first operation: the CPU host split into
    one device per core (`cpu_devices`), `jax.distributed` for multi-process launches, and the persistent
    compilation cache (`compilation_cache`, unless JAX_COMPILATION_CACHE_DIR already names one). The command
    calls it; a Python caller of `collapse.run.loop.run` may, to get the same."""
    import jax

    from collapse import devices

    if not isinstance(cfg.model, AnalyticConfig):
        devices.use_cpu_devices(cfg.cpu_devices, cfg.replicates, batch_sizes(cfg))
    devices.initialize()
    if cfg.compilation_cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", str(Path(cfg.compilation_cache).expanduser()))


def refuse(kind: str | None, error: Exception, status: int = 2) -> None:
    """The one line a refused command prints (stderr), and its exit status."""
    print(f"collapse: {kind + ': ' if kind else ''}{error}", file=sys.stderr)
    sys.exit(status)


# ------------------------------------------------------------------------------ before Hydra touches the disk


def writable(path: Path) -> str | None:
    """Why the run directory `path` cannot be created or written; None if it can."""
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def check_jobs(overrides: list[str], multirun: bool, config_name: str) -> None:
    """Compose, convert and validate every job the command runs, and check its run directory (writable; a
    study there must be this one); `ConfigError` / `DataError` name the first bad key or path."""
    planned = jobs(overrides, multirun=multirun, config_name=config_name)
    axes = [o for o in {o for job in planned for o in job.overrides} if any(o not in job.overrides for job in planned)]
    for job in planned:
        where = f" (the job {' '.join(o for o in job.overrides if o in axes)})" if len(planned) > 1 else ""
        try:
            validate(job.config)
            if job.run_dir is not None:
                if why := writable(job.run_dir):
                    raise ConfigError("out_dir", f"cannot write the run directory {job.run_dir}: {why}")
                if (job.run_dir / "config.json").exists():
                    from collapse.store import RunDir
                    from collapse.run.study import check_same_study

                    check_same_study(RunDir(job.run_dir), job.config)
        except ConfigError as e:
            raise ConfigError(e.key, f"{str(e).split(': ', 1)[1]}{where}") from None


def preflight(argv: list[str]) -> None:
    """Refuse a bad command line before Hydra runs (which creates the run directory first): one line, exit 2.
    Hydra's own commands that run no job (--help, --hydra-help, --info, --shell-completion) are left to it;
    --cfg composes (a bad key is refused) without validating."""
    from hydra._internal.utils import get_args_parser

    args = get_args_parser().parse_args(argv)
    commands = args.run + (args.cfg is not None) + args.multirun + args.shell_completion + (args.info is not None)
    if args.help or args.hydra_help or args.info or args.shell_completion or commands > 1 \
            or args.config_path is not None or args.config_dir is not None:
        return
    config_name = args.config_name or "config"
    try:
        if args.cfg is not None:
            jobs(args.overrides, multirun=False, config_name=config_name)
        else:
            check_jobs(args.overrides, args.multirun, config_name)
    except ConfigError as e:
        refuse("config error", e)
    except DataError as e:
        refuse("input error", e)


# ------------------------------------------------------------------------------------------- one job


class Job:
    """The job Hydra is running: its run directory, what this invocation created of it, and (`open`) its
    record there once the study is accepted."""

    def __init__(self, dcfg: DictConfig):
        self.dcfg = dcfg
        self.hydra = HydraConfig.get()
        self.out_dir = Path(self.hydra.runtime.output_dir)
        self.created = created_here(self.out_dir)  # the topmost directory Hydra just created, or None
        self.log_file: logging.Handler | None = None

    def open(self, store) -> None:
        """`collapse.run.loop.run`'s `on_open`: the lock is held and the study accepted. Record how it was launched
        (`.hydra/{config,hydra,overrides}.yaml`, as Hydra would have) and log to `<run>/<job>.log` (cli.log)."""
        from collapse.files import is_writer

        if is_writer():
            record = self.out_dir / ".hydra"
            record.mkdir(exist_ok=True)
            for name, node in (("config", self.dcfg), ("hydra", HydraConfig.instance().cfg),
                               ("overrides", self.hydra.overrides.task)):
                (record / f"{name}.yaml").write_text(OmegaConf.to_yaml(node), encoding="utf-8")
        self.log_file = logging.FileHandler(self.out_dir / f"{self.hydra.job.name}.log", encoding="utf-8")
        self.log_file.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(self.log_file)

    def failed(self, message: str, exc_info: bool = False) -> None:
        """A refused or failed job: its reason into the run's log if the run is this study's (the console gets
        it once, from the caller); otherwise remove the directories this invocation created, if still empty."""
        if self.log_file is not None:
            self.log_file.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None,
                                                sys.exc_info() if exc_info else None))
            return
        if self.created is None:
            return
        for path in (self.out_dir, *self.out_dir.parents):
            try:
                path.rmdir()  # only if empty: never what another process (or the user) put there
            except OSError:
                break
            if path == self.created:
                break

    def close(self) -> None:
        if self.log_file is not None:
            logging.getLogger().removeHandler(self.log_file)
            self.log_file.close()


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="config")
def _main(dcfg: DictConfig) -> None:
    job = Job(dcfg)
    try:
        cfg = from_hydra(dcfg)
        validate(cfg)  # before importing JAX: a bad value is refused at once
        set_up_jax(cfg)
        from collapse.run import loop

        loop.run(cfg, job.out_dir, on_open=job.open)
    except (ConfigError, DataError) as e:
        kind = "config error" if isinstance(e, ConfigError) else "input error"
        job.failed(f"{kind}: {e}")
        refuse(kind, e)
    except (FloatingPointError, StudyStopped) as e:  # the study cannot go on; its finished generations stay
        job.failed(str(e))
        refuse(None, e, status=3)
    except (Exception, KeyboardInterrupt) as e:  # a crash (Hydra prints the traceback) or an interrupt
        job.failed(f"{type(e).__name__}: {e}", exc_info=True)
        raise
    finally:
        job.close()


def main() -> None:
    register_configs()
    preflight(sys.argv[1:])
    _main()


if __name__ == "__main__":
    main()
