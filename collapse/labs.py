"""Several labs in one study (docs/ecosystems.md): their schemas and how each lab's own config is resolved.

A lab is a lineage with a name and its own values of the groups a lab may differ in (`LAB_GROUPS`: its model or
model schedule, training, sampling, curation, regime), written as a config's keys are on the command line
(`set: {model: small, sample.temperature: 0.9, train.teacher: "lab:a"}`: a group alone chooses its option, a
dotted key sets a value). The study's data, seed, replicates, generations and metrics are every lab's. Who
learns from whom: `reads` (lab -> share of its synthetic intake, the rows of W; `all` spreads a share over every
lab), `crawl` (rows taken from the
web each round) and `post_fraction` (the share of its samples it posts to the web). `human.shared_fraction` of
the human train split is every lab's; the rest is split into one private segment per lab. No JAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from collapse.checks import check, fraction, non_negative
from collapse.options import flatten, lookup

LAB_GROUPS = ("model", "model_schedule", "train", "sample", "regime", "curate")
TEACHER_PREFIX = "lab:"  # train.teacher=lab:<name>: another lab's model teaches
EVERY_LAB = "all"  # reads: {all: 1.0}: a share spread evenly over every lab, itself included (no lab is named so)


@dataclass
class LabConfig:
    """One lab of an ecosystem (not frozen: a sweep sets one lab's key, `labs.1.crawl=64`, which OmegaConf
    refuses on a frozen dataclass's node)."""

    name: str = ""
    set: dict[str, Any] = field(default_factory=dict)  # its own values: {"model": "small", "train.target": "soft"}
    reads: dict[str, float] = field(default_factory=dict)  # {lab or "all": share of its synthetic rows}; empty: its own
    post_fraction: float = 0.0  # share of each generation's samples it posts to the web
    crawl: int = 0  # rows it trains on, drawn from the web as of the previous round (0: it does not crawl)


@dataclass(frozen=True)
class HumanConfig:
    """How the labs share the human data."""

    shared_fraction: float = 1.0  # of the human train split, every lab's; the rest: one private segment per lab


@dataclass(frozen=True)
class WebConfig:
    """The web: the shared human data, new human text and what the labs post; read by the labs that crawl."""

    human_rows: int = 0  # new human rows that join the web each round (grammar: truth draws; text: the fresh reserve)


def w_row(lab: LabConfig, names: list[str]) -> dict[str, float]:
    """The lab's row of W, {source lab: share}: its `reads` with a share of `EVERY_LAB` spread evenly over every
    lab (added to any share named), or its own samples alone when it reads nothing."""
    if not lab.reads:
        return {lab.name: 1.0}
    every = lab.reads.get(EVERY_LAB, 0.0) / len(names)
    return {name: lab.reads.get(name, 0.0) + every for name in names}


def resolve(cfg_dict: dict[str, Any], lab: LabConfig, where: str) -> dict[str, Any]:
    """The lab's own config as config.json writes it (`collapse.config.to_dict`): the study's, with the lab's
    `set` applied (options first, then keys, type-checked against the option's schema by OmegaConf) and no labs."""
    from omegaconf.errors import OmegaConfBaseException

    from collapse.errors import ConfigError

    out = {k: v for k, v in cfg_dict.items() if k not in ("labs", "human", "web")}
    for group in LAB_GROUPS:  # every lab's groups through their schemas (2 and 2.0 are one value for every lab)
        if isinstance(out.get(group), dict) and "_option" in out[group]:
            out[group] = _typed(out[group], lookup(group, out[group]["_option"]))
    settings = flatten(lab.set)  # nested ({train: {target: soft}}) and dotted keys alike
    for key, value in sorted(settings.items(), key=lambda kv: "." in kv[0]):  # choose options, then set keys
        group, _, rest = key.partition(".")
        check(group in LAB_GROUPS, f"{where}.set.{key}", f"a lab may set {', '.join(LAB_GROUPS)}; {group!r} is the "
              "study's, every lab's alike")
        if group == "model_schedule":
            check(not rest and isinstance(value, (list, tuple)), f"{where}.set.{key}", "is a list of model options")
            out[group] = list(value)
        elif not rest:
            check(isinstance(value, str) and lookup(group, value) is not None, f"{where}.set.{key}",
                  f"{value!r} is not an option of {group}")
            out[group] = {"_option": value}
        else:
            option = lookup(group, out.get(group, {}).get("_option", ""))
            try:
                out[group] = _typed(out[group], option, rest, value)
            except OmegaConfBaseException as e:
                raise ConfigError(f"{where}.set.{key}", str(e).splitlines()[0]) from None
    return out


def _typed(values: dict[str, Any], option, key: str | None = None, value: Any = None) -> dict[str, Any]:
    """A group's values (`{"_option": name, ...}`) as its option's schema types them, with `key` set to `value`
    (OmegaConf checks the type)."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(option.schema(**{k: v for k, v in values.items() if k != "_option"}))
    OmegaConf.set_readonly(node, False)  # a frozen schema is read-only: the copy takes the lab's values
    if key is not None:
        OmegaConf.update(node, key, value, merge=False)
    return {"_option": option.name, **OmegaConf.to_container(node)}


def validate_labs(labs: list[LabConfig], human: HumanConfig, web: WebConfig) -> None:
    """The ecosystem's own rules (each lab's config is validated as a study of its own, elsewhere): names,
    reads that are a row of W, teachers that are labs, a source of data for every lab, the web's sizes."""
    fraction(human.shared_fraction, "human.shared_fraction")
    non_negative(web, "web", "human_rows")
    if not labs:
        check(human.shared_fraction == 1, "human.shared_fraction", "splits the human data among labs: set labs")
        check(web.human_rows == 0, "web.human_rows", "feeds the labs' web: set labs")
        return
    names = [lab.name for lab in labs]
    for i, lab in enumerate(labs):
        where = f"labs[{i}]"
        check(bool(lab.name) and lab.name.replace("_", "").isalnum(), f"{where}.name",
              f"a lab needs a name of letters, digits and _, got {lab.name!r}")
        check(lab.name not in names[:i], f"{where}.name", f"{lab.name!r} names two labs")
        check(lab.name != EVERY_LAB, f"{where}.name", f"{EVERY_LAB!r} means every lab in reads: name the lab otherwise")
        fraction(lab.post_fraction, f"{where}.post_fraction")
        non_negative(lab, where, "crawl")
        for source, w in lab.reads.items():
            check(source in names or source == EVERY_LAB, f"{where}.reads.{source}",
                  f"no lab is named {source!r}; the labs: {', '.join(names)} (or {EVERY_LAB!r}: every lab)")
            check(math.isfinite(w) and w >= 0, f"{where}.reads.{source}", f"must be a share >= 0, got {w}")
        if lab.reads:
            total = sum(lab.reads.values())
            check(abs(total - 1) < 1e-9, f"{where}.reads", f"the shares of a lab's synthetic rows (a row of W) must "
                  f"sum to 1, got {total:g}")
        check(not (lab.crawl and lab.reads), f"{where}.reads", "a lab that crawls the web trains on the crawl: drop "
              "reads, or crawl=0")
        teacher = str(flatten(lab.set).get("train.teacher", ""))
        if teacher.startswith(TEACHER_PREFIX):
            check(teacher[len(TEACHER_PREFIX):] in names, f"{where}.set.train.teacher",
                  f"{teacher}: no lab is named {teacher[len(TEACHER_PREFIX):]!r}; the labs: {', '.join(names)}")
    crawled = any(lab.crawl for lab in labs)
    check(crawled or web.human_rows == 0, "web.human_rows", "feeds the web, which no lab crawls: set a lab's crawl")
