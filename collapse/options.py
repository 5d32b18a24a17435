"""The registry of config options: every option of a config group registers its schema where it is implemented.

A group's base class names the group (`class RegimeConfig(Registered, group="regime")`); an option is a frozen
dataclass subclass that names itself (`class ReplaceConfig(RegimeConfig, option="replace")`) in the module
that implements it, with its validation and behaviour as methods. Importing that module registers it, so a new
regime or curation method is one module (plus its YAML in conf/ and its test). `collapse.config.OPTIONS`, the one
list users and error messages see (Hydra's schemas, `_option` in config.json), is this registry once the
option modules are imported. Imports nothing of collapse, and no JAX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Option:
    """An option of a config group: its schema, and `_option: <name>` in config.json. `choice`: selected on the
    command line as `<group>=<name>` (conf/<group>/<name>.yaml); the single schema of `train`, `sample` and
    `metrics` backs options of other names (`sample=continuation`), and `model: transformer` is only read back
    (config.json written before the transformer sizes had names; the Python API's plain TransformerConfig)."""

    group: str
    name: str
    schema: type
    choice: bool = True


_REGISTRY: dict[tuple[str, str], Option] = {}


def register(option: Option) -> None:
    """Add an option; a name registered twice in one group is a programming error (two modules claim it)."""
    old = _REGISTRY.get((option.group, option.name))
    if old is not None and old.schema.__qualname__ != option.schema.__qualname__:
        raise ValueError(f"{option.group}={option.name} is registered twice: {old.schema} and {option.schema}")
    _REGISTRY[(option.group, option.name)] = option


def registered() -> tuple[Option, ...]:
    """Every option, in the order its module registered it."""
    return tuple(_REGISTRY.values())


def lookup(group: str, name: str) -> Option | None:
    return _REGISTRY.get((group, name))


class Registered:
    """Base of a group's schemas: `class Base(Registered, group=...)` names the group, `class X(Base,
    option=...)` registers an option of it (`choice=False`: read back but not chosen on the command line)."""

    group: ClassVar[str]

    def __init_subclass__(cls, group: str | None = None, option: str | None = None, choice: bool = True, **kw):
        super().__init_subclass__(**kw)
        if group is not None:
            cls.group = group
        if option is not None:
            register(Option(cls.group, option, cls, choice))

    @property
    def name(self) -> str:
        """The option name (`_option` in config.json)."""
        return option_name(self)


def option_name(obj: object) -> str:
    """The option name of a group's config object."""
    for option in _REGISTRY.values():
        if type(obj) is option.schema:
            return option.name
    raise KeyError(f"{type(obj).__qualname__} is not a registered option")


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """A nested dict as {dotted key: value}, the keys as the command line writes them (a config's `to_dict`,
    a lab's `set`, which may mix nested and dotted keys)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
