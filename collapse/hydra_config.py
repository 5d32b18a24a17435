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
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

from collapse.config import Config, GROUPS, OPTIONS, study_id
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
    """The composed Hydra config as a frozen `Config` (every group converted to its option's dataclass)."""
    from omegaconf import OmegaConf

    names = [f.name for f in dataclasses.fields(Config)]
    keep = names + [n for n, _, _ in HYDRA_ONLY if n in dcfg]  # what a preset's values interpolate
    obj = OmegaConf.to_object(OmegaConf.masked_copy(dcfg, keep))  # without Hydra's own `hydra` node
    return Config(**{name: obj[name] for name in names})


def _run_dir(out_dir: str, *, _root_: Any) -> str:
    return f"runs/{study_id(from_hydra(_root_))}" if out_dir == "auto" else out_dir


def _sweep_dir(out_dir: str) -> str:
    return "runs" if out_dir == "auto" else out_dir


def _sweep_subdir(out_dir: str, job_num: Any, *, _root_: Any) -> str:
    return study_id(from_hydra(_root_)) if out_dir == "auto" else str(job_num)


def _by_scale(smoke: Any, cpu: Any, paper: Any, *, _root_: Any) -> Any:
    """A preset's value at the chosen scale (`_root_.scale`: the config's key, or in a defaults list the
    `scale` group's choice)."""
    from collapse.errors import ConfigError

    scale = _root_.get("scale")
    if scale not in SCALES:
        raise ConfigError("scale", f"by_scale needs scale={'|'.join(SCALES)} (set by a preset), got {scale!r}")
    return dict(zip(SCALES, (smoke, cpu, paper)))[scale]


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (`schema`, and one `schema_name` per option) and register the
    resolvers of conf/config.yaml (`out_dir=auto`: the run directory named by `study_id`)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import MISSING, OmegaConf

    for name, fn in (("collapse_run_dir", _run_dir), ("collapse_sweep_dir", _sweep_dir),
                     ("collapse_sweep_subdir", _sweep_subdir), ("by_scale", _by_scale)):
        OmegaConf.register_new_resolver(name, fn, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="schema", node=_root_schema(MISSING))
    for option in OPTIONS:
        node = OmegaConf.structured(option.schema)
        OmegaConf.set_readonly(node, False)
        cs.store(name=schema_name(option), node=node)


def compose(*overrides: str) -> Config:
    """The config that `collapse <overrides>` would run (not validated), through Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return from_hydra(hydra_compose("config", overrides=list(overrides)))
