"""A comparison of runs: their summary rows grouped into conditions (the config values that differ between runs,
seeds pooled) and pooled per generation into independent units, each condition's value at a generation the
mean over its units with a 95 % t-interval. The numbers `collapse-report` writes (`collapse.compare`) and a
results README quotes (`collapse.quote`), from the same rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from collapse import report
from collapse.errors import ConfigError, DataError
from collapse.stats import Moments, aggregate, mean_ci
from collapse.files import load_json
from collapse.tables import ci_cell, markdown_table


@dataclasses.dataclass
class Options:
    """What a comparison shows; `<out>/report.json` records them, and `--all` reads them back."""

    headline: list[str] = dataclasses.field(default_factory=list)  # empty: `default_headline`
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # {condition: label in words}
    heatmap: list[str] = dataclasses.field(default_factory=list)  # two config columns; empty: automatic
    complete_only: bool = False  # leave incomplete runs out, rather than use their finished generations
    aggregate: bool = False  # summary.csv in the aggregated form (n, mean, sd per run × generation × metric)
    where: dict[str, str] = dataclasses.field(default_factory=dict)  # only the runs with these config values


def load_options(path: Path) -> Options:
    spec = load_json(path)
    unknown = set(spec) - {f.name for f in dataclasses.fields(Options)}
    if not isinstance(spec, dict) or unknown:
        raise DataError(path, f"not a report spec (unknown keys: {', '.join(sorted(unknown))})")
    return Options(**spec)


def condition(values: dict[str, str]) -> str:
    """A condition's key: its config values (`summary.varying`) as `column=value`, the ones it has."""
    return " ".join(f"{k}={v}" for k, v in values.items() if v != "") or "all runs"


# Config values whose literal text misleads in a label: 0 standing for a default size, or "off".
ZERO_MEANS = {"regime.size": "train split", "sample.num_sequences": "train split", "sample.top_k": "off",
              "sample.beam_size": "off", "train.tokens": "epochs", "sample.temperature": "greedy"}


def _word(key: str, value: str) -> str:
    """A config value as a label shows it: booleans as yes / no, a 0 that means something else as that."""
    if value in ("True", "False"):
        return "yes" if value == "True" else "no"
    if key in ZERO_MEANS and value in ("0", "0.0"):
        return ZERO_MEANS[key]
    return value


def readable(values: dict[str, str]) -> str:
    """A condition in words for legends and tables: `regime=mix, human_fraction=0.1, fresh=no` (the last part
    of each column name, where that is unambiguous; `ZERO_MEANS` and booleans in words)."""
    shown = {k: v for k, v in values.items() if v != ""}
    last = [k.rsplit(".", 1)[-1] for k in shown]
    short = {k: s if last.count(s) == 1 else k for k, s in zip(shown, last)}
    return ", ".join(f"{short[k]}={_word(k, v)}" for k, v in shown.items()) or "all runs"


def units(n: int, shared: bool, seeds: bool) -> str:
    """The independent units of a condition in words (comparison.md's Conditions table)."""
    count = f"{n} unit{'' if n == 1 else 's'}"
    if seeds:
        return f"{count}: seeds (each the mean of its replicates, which share its corpus split)"
    return f"{count}: " + ("replicates of one corpus split" if shared else
                           "seeds × replicates, each with its own human data")


def pooled_rows(rows_by_run: dict, shared: bool) -> tuple[list[dict], str]:
    """The rows of a group's runs (its seeds) with one value per independent unit, and the units in words.

    Where every replicate drew its own human data, each (seed, replicate) is a unit. Where a seed's
    replicates share one corpus split, they are not independent draws of the data: with two or more seeds,
    a seed's replicates are averaged and the seeds are the units (so the interval includes the split's
    noise); with one seed the replicates are the units, and the interval is conditional on its split."""
    if not shared or len(rows_by_run) < 2:
        rows = [{**row, "replicate": (i, row["replicate"])}
                for i, run_rows in enumerate(rows_by_run.values()) for row in run_rows]
        return rows, units(len({row["replicate"] for row in rows}), shared, seeds=False)
    rows = []
    for i, run_rows in enumerate(rows_by_run.values()):
        agg = aggregate(run_rows)
        rows += [{"generation": g, "replicate": (i,), "metric": name, "value": float(np.mean(values))}
                 for name, by_gen in agg.items() for g, values in by_gen.items()]
    return rows, units(len(rows_by_run), shared, seeds=True)


def pooled_moments(rows_by_run: dict, shared: bool) -> tuple[dict, str, int]:
    """`pooled_rows` for rows of the aggregated summary (each value the `Moments` of one run's replicates):
    {metric: {generation: Moments over the units}}, the units in words and their number."""
    cells = [{(r["metric"], r["generation"]): r["value"] for r in rows if r["value"] is not None}
             for rows in rows_by_run.values()]
    agg: dict[str, dict[int, Moments]] = {}
    if not shared or len(cells) < 2:
        for run in cells:
            for (name, g), m in run.items():
                by_gen = agg.setdefault(name, {})
                by_gen[g] = by_gen[g] + m if g in by_gen else m
        n = sum(max((m.n for m in run.values()), default=0) for run in cells)
        return agg, units(n, shared, seeds=False), n
    for key in dict.fromkeys(k for run in cells for k in run):
        agg.setdefault(key[0], {})[key[1]] = Moments.of([run[key].mean for run in cells if key in run])
    return agg, units(len(cells), shared, seeds=True), len(cells)


def cell(values: list[float], n: int) -> str:
    """`mean ± half`, with the number of values where it is less than the condition's `n` units."""
    text = ci_cell(*mean_ci(values))
    return text if len(values) >= n else f"{text} (n={len(values)})"


class Comparison:
    """The conditions of a summary (`summary.collect` / `summary.read_csv` rows) pooled per generation."""

    def __init__(self, rows: list[dict], columns: list[str], options: Options):
        self.runs: dict[str, dict] = {}  # name -> its first row (the run's fields)
        by_run: dict[str, list[dict]] = {}
        for row in rows:
            self.runs.setdefault(row["run"], row)
            if row["metric"] is not None:
                by_run.setdefault(row["run"], []).append(row)
        self.members: dict[str, list[str]] = {}
        self.values: dict[str, dict[str, str]] = {}
        for name, run in self.runs.items():
            values = {c: run[c] for c in columns}
            self.members.setdefault(condition(values), []).append(name)
            self.values.setdefault(condition(values), values)
        for key, members in self.members.items():  # a condition's runs differ only in their seeds
            seeds = [self.runs[m]["seed"] for m in members]
            twice = next((seed for seed in seeds if seeds.count(seed) > 1), None)
            if twice is not None:
                same = [m for m in members if self.runs[m]["seed"] == twice]
                raise DataError(same[1], f"the same study as {same[0]} (config and seed {twice}): pooling both "
                                "would count one unit twice; compare one of them (move the other away, or "
                                "select with --where)")
        self.labels = {key: options.labels.get(key) or readable(v) for key, v in self.values.items()}
        stray = [key for key in options.labels if key not in self.values]
        if stray:  # a label that names no condition would leave that condition unlabelled without a word
            raise ConfigError("labels", f"{stray[0]!r} is not a condition of these runs; they are: "
                                        + "; ".join(self.values))
        self.incomplete = [name for name, run in self.runs.items() if run["incomplete"]]
        self.units: dict[str, str] = {}
        self.aggs: dict[str, dict] = {}  # {condition: {metric: {generation: values}}}
        self.n: dict[str, int] = {}
        for key, members in self.members.items():
            used = {m: by_run[m] for m in members
                    if m in by_run and not (options.complete_only and self.runs[m]["incomplete"])}
            shared = self.runs[members[0]]["shared_human_data"]
            if used and any(isinstance(r["value"], Moments) for rows in used.values() for r in rows):
                self.aggs[key], self.units[key], self.n[key] = pooled_moments(used, shared)
            elif used:
                pooled, self.units[key] = pooled_rows(used, shared)
                self.aggs[key] = aggregate(pooled)
                self.n[key] = len({row["replicate"] for row in pooled})
        self.names = sorted({m for agg in self.aggs.values() for m in agg}, key=report.sort_key)

    def table(self, name: str, gens: list[int]) -> str:
        """Mean ± 95 % t-interval of metric `name` per condition at generations `gens` (those it has), for the
        conditions that have it (an ecosystem's labs have no between-lab metric, its own rows no lab's)."""
        gens = [g for g in gens if any(g in agg.get(name, {}) for agg in self.aggs.values())]
        body = [[self.labels[key], str(self.n[key]),
                 *(cell(agg[name][g], self.n[key]) if g in agg.get(name, {}) else "" for g in gens)]
                for key, agg in self.aggs.items() if agg.get(name)]
        return markdown_table(["condition", "n", *(f"gen {g}" for g in gens)], body)

    def last_values(self, name: str, g: int) -> dict[str, list[float]]:
        """{condition: values of metric `name` at generation g}, for the conditions that have them."""
        return {key: agg[name][g] for key, agg in self.aggs.items() if g in agg.get(name, {})}
