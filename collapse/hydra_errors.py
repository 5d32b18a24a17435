"""Hydra's and OmegaConf's composition errors as one `ConfigError` each: the key or group named, a misspelt key or
option with its close match (`config_error`), a key of another option of the group said so (`no_such_key`)."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any

from collapse.config import OPTIONS
from collapse.errors import ConfigError


def no_such_key(name: str, schema: Any, prefix: str) -> str:
    """Why `prefix + name` is refused: no such key (and the close key of the same schema), or a key of the
    group's other options."""
    fields = [f.name for f in dataclasses.fields(schema) if not f.name.startswith("_")] \
        if dataclasses.is_dataclass(schema) else []
    group = next((o for o in OPTIONS if o.schema is schema), None)
    if group is not None and prefix == f"{group.group}.":
        owners = [o.name for o in OPTIONS if o.group == group.group and o.choice and o.schema is not schema
                  and name in {f.name for f in dataclasses.fields(o.schema)}]
        if owners:
            have = "has" if len(owners) == 1 else "have"
            return f"not a key of {group.group}={group.name} ({', '.join(owners)} {have} it)"
    close = difflib.get_close_matches(name, fields, n=1)
    return "no such key" + (f"; did you mean {prefix}{close[0]}?" if close else "")


def _chain(e: BaseException | None, context: bool = False):
    """`e` and its causes (and, with `context`, the exceptions it was raised while handling)."""
    while e is not None:
        yield e
        e = e.__cause__ or (e.__context__ if context else None)


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


_TYPES = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def _omegaconf_message(e: Any) -> str:
    """OmegaConf's complaint about one value, without its `full_key:` / `object_type=` lines."""
    from omegaconf.errors import MissingMandatoryValue

    text = _first_line(getattr(e, "msg", None) or e)
    if m := re.match(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", text):
        return f"{m[1]!r} is not {_TYPES.get(m[2], m[2])}"
    if re.match(r"field '.*' is not Optional", text) or "Non optional field cannot be assigned None" in text:
        return "must have a value, not null"
    if isinstance(e, MissingMandatoryValue):
        return "has no value: set it on the command line (key=value)"
    return text


def _parses(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        OverridesParser.create().parse_override(override)
        return True
    except HydraException:
        return False


def config_error(e: BaseException, overrides: typing.Sequence[str] = ()) -> ConfigError:
    """A Hydra or OmegaConf composition error as one `ConfigError` naming the key (or group) and, for a
    misspelling, the close key or option. `overrides`: the command line, to find an override that does not parse."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    for x in _chain(e, context=True):  # a ConfigError raised by a resolver (by_scale)
        if isinstance(x, ConfigError):
            return x
    if isinstance(e, OverrideParseException):
        bad = next((o for o in overrides if not _parses(o)), None)
        return ConfigError(bad or "command line", f"does not parse as key=value ({_first_line(e)})")
    if isinstance(e, MissingConfigException) and e.missing_cfg_file and e.options is not None:
        group, _, name = e.missing_cfg_file.rpartition("/")
        close = difflib.get_close_matches(name, list(e.options), n=1)
        return ConfigError(group, f"no option {name}; " + (f"did you mean {group}={close[0]}?" if close
                                                           else f"the options: {', '.join(e.options)}"))
    cause = next((x for x in _chain(e) if isinstance(x, OmegaConfBaseException) and getattr(x, "full_key", None)),
                 None)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        prefix, _, name = cause.full_key.rpartition(".")
        return ConfigError(cause.full_key, no_such_key(name, cause.object_type, prefix + "." if prefix else ""))
    if cause is not None:
        return ConfigError(cause.full_key, _omegaconf_message(cause))
    text = str(e)
    if m := re.match(r"Could not override '([^']+)'\. No match in the defaults list", text):
        if m[1] == "scale":
            return ConfigError("scale", "only a preset has a scale: +experiment=NAME scale=smoke|cpu|paper")
        add = re.search(r"use (\+\S+)", text)
        return ConfigError(m[1], "is not in the defaults list" + (f"; add it with {add[1]}" if add else ""))
    if m := re.match(r"Could not append to config\. An item is already at '([^']+)'", text):
        return ConfigError(m[1], "is already a key: set it without the +")
    if m := re.match(r"Ambiguous value for argument '([^']+)'|Sweep parameters '([^']+)' requires --multirun", text):
        return ConfigError(m[1] or m[2], "is a sweep: run it with -m (a list is written [a,b])")
    return ConfigError("command line", _first_line(e) or type(e).__name__)
