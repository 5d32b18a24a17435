"""A comparison written out: `comparison.md` (per family of metrics a table per metric, the conditions with their
config and units, the incomplete runs), `figures/comparison.png` (the headline metrics), `figures/<family>.png`
and, over two config columns, `figures/heatmap.png` and its tables; `report.json` records the options. From
summary rows alone (`collapse.summary`), so reading summary.csv gives the same comparison as reading the runs.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np

from collapse import report, tables
from collapse.files import atomic_write, save_json
from collapse.metrics import score  # noqa: F401  (importing it declares the metric families)
from collapse.metrics.families import declared, family_of
from collapse.pooling import Comparison, Options, cell, condition
from collapse.stats import mean_ci
from collapse.tables import markdown_table

log = logging.getLogger("collapse")

MOST_GENERATIONS = 12  # columns of a comparison table (log-spaced beyond, `tables.shown_generations`)



def metric_families(names: list[str]) -> dict[str, list[str]]:
    """{family: metrics} (as `collapse.metrics.families` declares them) of a transformer study; one family `metrics`
    for the analytic ones
    (none of `report.SHOWN` present)."""
    if names and not set(names) & set(report.SHOWN):
        return {"metrics": list(names)}
    families = {key: [n for n in names if family_of(n) == key] for key in declared()}
    return {key: shown for key, shown in families.items() if shown}


def default_headline(names: list[str]) -> list[str]:
    """One metric per family that names headline candidates (perplexity drift, diversity, tails), or the first
    three metrics where none is present (analytic families)."""
    picks = [next((m for m in f.headline if m in names), None) for f in declared().values() if f.headline]
    return [m for m in picks if m] or sorted(names, key=report.sort_key)[:3]


def heatmap_axes(values: dict[str, dict[str, str]], requested: list[str]) -> list[str]:
    """The two config columns of the heatmap: `requested`, else the two that take several values across the
    conditions (`values`: {condition: its config values}), if exactly two do; else []."""
    columns = list(next(iter(values.values()), {}))
    if requested:
        if len(requested) != 2 or not set(requested) <= set(columns):
            log.warning("--heatmap %s: not two of the config columns (%s); no heatmap", ",".join(requested),
                        ", ".join(columns) or "none vary")
            return []
        return list(requested)
    axes = [c for c in columns if len({v[c] for v in values.values() if v[c] != ""}) > 1]
    return axes if len(axes) == 2 else []


def _axis_values(cells: list[str]) -> list[str]:
    """The values of a heatmap axis: numerically sorted if numbers, else in order of appearance; "" (a
    condition without the key) last."""
    present = list(dict.fromkeys(c for c in cells if c != ""))
    try:
        present = sorted(present, key=float)
    except ValueError:
        pass
    return present + ([""] if "" in cells else [])


def _heatmap_section(comp: Comparison, axes: list[str], headline: list[str], out: Path) -> list[str]:
    """The headline metrics at the study's last generation over two config columns: tables and
    `figures/heatmap.png`; [] where the two columns do not single out one condition per cell."""
    from collapse.plots import heatmaps, style

    a, b = axes
    cell_of = {key: (v[a], v[b]) for key, v in comp.values.items() if key in comp.aggs}
    if len(set(cell_of.values())) < len(cell_of):
        log.warning("heatmap over %s × %s: other config values vary within a cell; no heatmap", a, b)
        return []
    rows, cols = _axis_values([c[0] for c in cell_of.values()]), _axis_values([c[1] for c in cell_of.values()])
    show = lambda v: v or "—"  # noqa: E731  (a condition without the key)
    lines, panels, units = [f"## {a} × {b}", ""], {}, {}
    for name in headline:
        g = max((g for agg in comp.aggs.values() for g in agg.get(name, {})), default=None)
        if g is None:
            continue
        grid = {cell_of[key]: (v, comp.n[key]) for key, v in comp.last_values(name, g).items()}
        units[f"{name}, generation {g}"] = style.axis(name).label
        panels[f"{name}, generation {g}"] = np.array(
            [[mean_ci(grid[r, c][0])[0] if (r, c) in grid else np.nan for c in cols] for r in rows])
        body = [[show(r), *(cell(*grid[r, c]) if (r, c) in grid else "" for c in cols)] for r in rows]
        lines += [f"{name} at generation {g}:", "", markdown_table([f"{a} \\ {b}", *map(show, cols)], body), ""]
    if not panels:
        return []
    figure = heatmaps.heatmaps(panels, [show(r) for r in rows], [show(c) for c in cols], a, b,
                            out / "figures" / "heatmap.png", units)
    return lines + [f"![heatmap]({figure.relative_to(out)})", ""]


def write(rows: list[dict], columns: list[str], out: Path, options: Options) -> Path:
    """Write `out/comparison.md`, its figures and `out/report.json` from summary rows and config columns."""
    from collapse.plots import curves

    comp = Comparison(rows, columns, options)
    names = comp.names
    unknown = [m for m in options.headline if m not in names]
    if unknown:
        log.warning("--headline: %s not among the metrics; left out", ", ".join(unknown))
    headline = [m for m in options.headline if m in names] or default_headline(names)
    save_json(out / "report.json", dataclasses.asdict(dataclasses.replace(options, headline=headline)))
    for name in comp.incomplete:
        run = comp.runs[name]
        log.warning("incomplete run %s (%s): %d of %d generations finished (%s); %s", name,
                    comp.labels[condition({c: run[c] for c in columns})], run["finished_generations"],
                    run["planned_generations"], run["incomplete"],
                    "left out" if options.complete_only else "its finished generations are used")
    gens = sorted({g for agg in comp.aggs.values() for by_gen in agg.values() for g in by_gen})
    shown = tables.shown_generations(gens, MOST_GENERATIONS)
    lines = [f"# Comparison of {len(comp.runs)} runs", "",
             f"{len(comp.members)} conditions. Mean ± 95 % t-interval over the independent units of each condition "
             "(n; see Conditions for what they are), per generation; a cell that pools fewer units (runs that did "
             "not reach that generation, undefined values) gives its own n.", ""]
    if comp.incomplete:
        lines += [f"{len(comp.incomplete)} of {len(comp.runs)} runs are incomplete (see Incomplete runs): "
                  + ("left out of every aggregate (`--complete-only`)." if options.complete_only else
                     "they contribute the generations they finished, so a value at generation g pools only the "
                     "units that reached g."), ""]
    if len(shown) < len(gens):
        lines += [f"Tables: {len(shown)} of {len(gens)} generations (log-spaced); summary.csv has every one.", ""]
    if names:
        figure = curves.condition_curves(comp.aggs, headline, comp.labels, out / "figures" / "comparison.png",
                                        n=comp.n)
        lines += [f"![comparison]({figure.relative_to(out)})", "",
                  f"Headline metrics ({', '.join(headline)}): one line per condition, the mean over its units "
                  "with a 95 % band (bands clipped to the panel; none for a condition of one unit, marked n = 1; "
                  "conditions with identical curves drawn side by side, a fraction of a generation apart); the "
                  "other metrics below, by family.", ""]
    axes = heatmap_axes({k: comp.values[k] for k in comp.aggs}, options.heatmap)
    if axes and names:
        lines += _heatmap_section(comp, axes, headline, out)
    for key, members in metric_families(names).items():
        lines += [f"## {declared()[key].title if key in declared() else 'Metrics'}", ""]
        rest = [m for m in members if m not in headline]
        if rest:
            figure = curves.condition_curves(comp.aggs, rest, comp.labels, out / "figures" / f"{key}.png", n=comp.n)
            lines += [f"![{key}]({figure.relative_to(out)})", ""]
        for name in members:
            lines += [f"### {name}", "", comp.table(name, shown), ""]
    lines += ["## Conditions", "", markdown_table(["condition", "config", "units", "runs"], [
        [comp.labels[key], f"`{key}`", comp.units.get(key, "none: no finished generation"),
         ", ".join(f"`{r}`" for r in members)] for key, members in comp.members.items()])]
    if comp.incomplete:
        body = [[f"`{name}`", comp.labels[condition({c: run[c] for c in columns})],
                 f"{run['finished_generations']} of {run['planned_generations']}", run["incomplete"],
                 "no" if options.complete_only or not run["finished_generations"] else "finished generations"]
                for name in comp.incomplete for run in [comp.runs[name]]]
        lines += ["", "## Incomplete runs", "", markdown_table(
            ["run", "condition", "generations finished", "why (first missing marker, logged error)",
             "in the aggregates"], body)]
    _remove_stale(out / "figures", set(re.findall(r"\]\(figures/([^)]+)\)", "\n".join(lines))))
    path = out / "comparison.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path


def _remove_stale(figures: Path, written: set[str]) -> None:
    """Remove the comparison figures an earlier comparison in `figures` wrote and this one did not (a family now
    all in the headline, a heatmap no longer asked for), so that the folder matches comparison.md."""
    for name in ("comparison", "heatmap", "metrics", *declared()):
        if f"{name}.png" not in written:
            (figures / f"{name}.png").unlink(missing_ok=True)
