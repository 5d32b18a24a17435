"""Hydra glue: the schemas in Hydra's ConfigStore, the run-directory resolvers, the composed config as a `Config`.

The YAML options in conf/<group>/ extend the schemas, which are stored as root configs named by `schema_name`
(`- /schema_data_grammar` in conf/data/grammar.yaml) rather than inside the groups, so that `collapse --help`
and Hydra's "Available options" list only the options a user can choose.

Study presets (conf/experiment/<name>.yaml, `+experiment=<name> scale=smoke|cpu|paper`): the `scale` group sets
the Hydra-only key `scale` (not part of `Config`), and `${by_scale:<smoke>,<cpu>,<paper>}` picks a preset's value
for it, in the config and in its defaults list (`- override /model: ${by_scale:tiny,tiny,gpt2_small}`: there
the resolver reads the `scale` group's choice).
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

from collapse.config import GROUPS, OPTIONS, Config, study_id
from collapse.errors import ConfigError
from collapse.hydra_errors import config_error, no_such_key
from collapse.options import Option


def conf_dir() -> str:
    """conf/ beside the package in a checkout, or collapse/conf inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").exists():
            return str(candidate)
    raise FileNotFoundError(f"no Hydra config directory next to {here}")


def schema_name(option: Option) -> str:
    """The ConfigStore name of an option's schema: `schema_<group>_<option>`, `schema_<group>` for the single
    schema of train, sample and metrics."""
    return f"schema_{option.group}" if option.name == option.group else f"schema_{option.group}_{option.name}"


SCALES = ("smoke", "cpu", "paper")  # the options of conf/scale/, in the order of by_scale's arguments

# Keys of the Hydra config that are not `Config` fields: set by a preset's `scale` option, read by `by_scale`.
HYDRA_ONLY = (("scale", typing.Optional[str], None),)


def _root_schema(missing: Any) -> type:
    """`Config` for Hydra: groups untyped and unset (the defaults list picks an option, whose own schema
    types it; OmegaConf would make a node typed by a frozen dataclass read-only), and the `HYDRA_ONLY` keys."""
    hints = typing.get_type_hints(Config)
    fields = [(f.name, Any, field(default=missing)) if f.name in GROUPS
              else (f.name, hints[f.name], field(default_factory=f.default_factory))
              if f.default is dataclasses.MISSING else (f.name, hints[f.name], f.default)
              for f in dataclasses.fields(Config)]
    return dataclasses.make_dataclass("ConfigSchema", fields + [(n, t, field(default=d)) for n, t, d in HYDRA_ONLY])


def from_hydra(dcfg: Any) -> Config:
    """The composed Hydra config as a frozen `Config` (every group converted to its option's dataclass).
    `ConfigError` names a key no schema has (`+data.n_trian=1`), a removed key or a value that does not convert."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    names = [f.name for f in dataclasses.fields(Config)]
    _check_keys(dcfg, "")
    for name in names:
        if name not in dcfg:
            raise ConfigError(name, f"has no value (removed with ~{name}?)")
    keep = names + [n for n, _, _ in HYDRA_ONLY if n in dcfg]  # what a preset's values interpolate
    try:
        obj = OmegaConf.to_object(OmegaConf.masked_copy(dcfg, keep))  # without Hydra's own `hydra` node
    except OmegaConfBaseException as e:
        raise config_error(e) from None
    from collapse.pretrained import resolve

    return resolve(Config(**{name: obj[name] for name in names}))  # a pretrained model's sizes, from its folder


def _check_keys(node: Any, prefix: str) -> None:
    """Every key of `node` (a composed config, without Hydra's node) is a field of its schema: Hydra adds a key
    given as `+key=value` even to a schema, which would otherwise fail deep inside the conversion."""
    from omegaconf import DictConfig, OmegaConf

    schema = OmegaConf.get_type(node)
    fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        if not prefix and key == "hydra":
            continue
        if fields is not None and key not in fields:
            raise ConfigError(f"{prefix}{key}", no_such_key(str(key), schema, prefix))
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not (child._is_missing() or child._is_none() or child._is_interpolation()):
            _check_keys(child, f"{prefix}{key}.")


# ------------------------------------------------------------------------------ resolvers, run directories

# Run directories as Hydra is about to create them (its `run_job` resolves hydra.run.dir / hydra.sweep.subdir
# through these resolvers, then calls mkdir): {absolute path: the topmost directory missing then, or None}.
# The command removes, on a refusal, only directories that this invocation created.
_MISSING_BEFORE: dict[str, Path | None] = {}


def _note(path: str) -> str:
    p = Path(os.path.abspath(path))  # as Hydra makes it
    top = None
    for q in (p, *p.parents):
        if os.path.lexists(q):
            break
        top = q
    _MISSING_BEFORE[str(p)] = top
    return path


def created_here(path: str | os.PathLike) -> Path | None:
    """The topmost directory of `path` that did not exist when Hydra resolved it as a run directory (so this
    invocation created it and those below it); None if it existed or was not resolved here."""
    return _MISSING_BEFORE.get(os.path.abspath(path))


def _run_dir(out_dir: str, *, _root_: Any) -> str:
    """A single run's directory: `out_dir`; `auto`: runs/<study id>; a preset's (it has a `scale`) out_dir is the
    folder of its sweep's numbered jobs, so a single run goes beside them, in <out_dir>/<study id>, never as
    their parent (a comparison of the folder would pool the parent and a job of the same study)."""
    if out_dir == "auto":
        return _note(f"runs/{study_id(from_hydra(_root_))}")
    if _root_.get("scale") is not None:
        return _note(os.path.join(out_dir, study_id(from_hydra(_root_))))
    return _note(out_dir)


def _sweep_dir(out_dir: str) -> str:
    return "runs" if out_dir == "auto" else out_dir


def _sweep_subdir(out_dir: str, job_num: Any, *, _root_: Any) -> str:
    subdir = study_id(from_hydra(_root_)) if out_dir == "auto" else str(job_num)
    _note(os.path.join(_sweep_dir(out_dir), subdir))
    return subdir


def _by_scale(smoke: Any, cpu: Any, paper: Any, *, _root_: Any) -> Any:
    """A preset's value at the chosen scale (`_root_.scale`: the config's key, or in a defaults list the
    `scale` group's choice)."""
    from collapse.errors import ConfigError

    scale = _root_.get("scale")
    if scale not in SCALES:
        raise ConfigError("scale", f"by_scale needs scale={'|'.join(SCALES)} (set by a preset), got {scale!r}")
    return dict(zip(SCALES, (smoke, cpu, paper)))[scale]


def _help_config(*, _root_: Any) -> str:
    """The keys block of `collapse --help` (conf/hydra/help/collapse.yaml): the composed config without Hydra's
    node, as Hydra's `$CONFIG` shows it, except that a chosen option without keys reads `regime: replace (no
    keys)` rather than `regime: {}`."""
    from omegaconf import OmegaConf

    choices = _root_.hydra.runtime.choices
    text = OmegaConf.to_yaml(OmegaConf.masked_copy(_root_, [k for k in _root_ if k != "hydra"]))
    text = re.sub(r"^(\w+): \{\}$", lambda m: f"{m[1]}: {choices.get(m[1])} (no keys)" if m[1] in GROUPS else m[0],
                  text, flags=re.M)
    return text.replace("$", "$$")  # Hydra fills the help template with string.Template


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (`schema`, and one `schema_name` per option) and register the
    resolvers of conf/config.yaml (`out_dir=auto`: the run directory named by `study_id`)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import MISSING, OmegaConf

    for name, fn in (("collapse_run_dir", _run_dir), ("collapse_sweep_dir", _sweep_dir),
                     ("collapse_sweep_subdir", _sweep_subdir), ("by_scale", _by_scale),
                     ("collapse_help_config", _help_config)):
        OmegaConf.register_new_resolver(name, fn, replace=True)
    cs = ConfigStore.instance()
    root = OmegaConf.structured(_root_schema(MISSING))
    for key in ("human", "web"):  # typed by frozen dataclasses (collapse.labs): writable, as the groups' are
        OmegaConf.set_readonly(root[key], False)
    cs.store(name="schema", node=root)
    for option in OPTIONS:
        node = OmegaConf.structured(option.schema)
        OmegaConf.set_readonly(node, False)
        cs.store(name=schema_name(option), node=node)


@dataclasses.dataclass(frozen=True)
class Job:
    """One job of a `collapse` command: its overrides, its config, and the run directory Hydra will give it
    (None where it cannot be resolved before Hydra runs, e.g. a `hydra.run.dir` naming `${hydra:...}`)."""

    overrides: list[str]
    config: Config
    run_dir: Path | None


def _resolved_dir(cfg: Any, *keys: str) -> Path | None:
    from omegaconf import OmegaConf

    try:
        return Path(os.path.join(*(str(OmegaConf.select(cfg, key, throw_on_missing=True)) for key in keys)))
    except Exception:  # noqa: BLE001 (only Hydra knows: the job checks it again)
        return None


def jobs(overrides: typing.Sequence[str], *, multirun: bool, config_name: str = "config") -> list[Job]:
    """Every job `collapse [-m] <overrides>` runs, composed as Hydra composes it and converted (not validated):
    with `multirun`, the preset's `hydra.sweeper.params` and the command line's sweeps expanded as Hydra's basic
    sweeper does (a key on the command line replaces the preset's axis). A composition error is one
    `ConfigError` (`config_error`)."""
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    register_configs()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3", job_name="cli"):
            hydra, loader = GlobalHydra.instance().hydra, GlobalHydra.instance().config_loader()
            if not multirun:
                cfg = hydra.compose_config(config_name, overrides, run_mode=RunMode.RUN)
                return [Job(overrides, from_hydra(cfg), _resolved_dir(cfg, "hydra.run.dir"))]
            master = hydra.compose_config(config_name, overrides, run_mode=RunMode.MULTIRUN)
            sweeper = master.hydra.sweeper
            if OmegaConf.select(sweeper, "_target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
                return [Job(overrides, from_hydra(master), None)]  # another sweeper: its jobs are its own
            params = [f"{k}={v}" for k, v in (sweeper.params or {}).items()]
            parsed = OverridesParser.create(config_loader=loader).parse_overrides(
                params + list(master.hydra.overrides.task))
            [batch] = BasicSweeper.split_arguments(parsed, None)
            out = []
            for num, job in enumerate(batch):
                cfg = loader.load_sweep_config(master, list(job))
                with open_dict(cfg.hydra.job):
                    cfg.hydra.job.num = cfg.hydra.job.id = num
                out.append(Job(list(job), from_hydra(cfg), _resolved_dir(cfg, "hydra.sweep.dir", "hydra.sweep.subdir")))
            return out
    except (HydraException, OmegaConfBaseException) as e:
        raise config_error(e, overrides) from None


def compose(*overrides: str) -> Config:
    """The config that `collapse <overrides>` would run (not validated), through Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return from_hydra(hydra_compose("config", overrides=list(overrides)))
