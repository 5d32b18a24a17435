"""`collapse-report`: rewrite the reports of run directories and compare several runs (e.g. a sweep).

    uv run collapse-report runs/my-run                   # rewrite runs/my-run/report.md and figures
    uv run collapse-report runs/sweep --out runs/sweep   # every run below runs/sweep, plus the comparison
    uv run collapse-report runs/sweep/summary.csv        # the comparison again, from its summary.csv alone
    uv run collapse-report --all                         # every comparison under results/, from the files,
                                                         # then every results README's quoted numbers
    uv run collapse-report --quote results/curation/README.md   # one README's quoted numbers (collapse.quote)

A comparison writes `summary.csv` (collapse.summary: every metric row with the run's varying config values;
with `--aggregate`, n, mean and sd of each run's replicates per generation and metric),
`report.json` (the options below, which `--all` reuses), `comparison.md`, `figures/comparison.png` (the
headline metrics, one line per condition), `figures/<family>.png` (the other metrics of each family) and,
when exactly two config columns take several values (or `--heatmap` names two), `figures/heatmap.png` (the
headline metrics at the last generation over the two). It is always computed from summary.csv, so reading
the file gives the same comparison as reading the runs.

Runs are grouped into conditions by the config values that differ between them, seeds pooled: a condition's
value at a generation is the mean over its independent units with a 95 % t-interval (`pooled_rows`: seeds ×
replicates where every replicate drew its own human data; seeds where replicates share a corpus split).
Incomplete runs (failed, stopped or still running) are listed with the generations they finished and why
they stopped where known; they contribute their finished generations, or nothing with `--complete-only`.
Directories without a readable config.json are skipped with a note.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
from pathlib import Path

import numpy as np

from collapse import quote, report, summary
from collapse.comparison import Comparison, Options, cell, condition, load_options
from collapse.errors import ConfigError, DataError
from collapse.stats import mean_ci
from collapse.files import atomic_write, load_json, save_json
from collapse.store import RunDir
from collapse.metrics.families import declared, family_of
from collapse.tables import markdown_table

log = logging.getLogger("collapse")

MOST_GENERATIONS = 12  # columns of a comparison table (log-spaced beyond, `report.shown_generations`)


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories (holding config.json) at or below `paths`, in a stable order: numbered sweep jobs in
    job order (2 before 10), so that conditions appear as the sweep lists them."""
    found = set()
    for path in paths:
        if (path / "config.json").exists():
            found.add(path.resolve())
        found.update(p.parent.resolve() for p in path.glob("**/config.json"))
    natural = lambda p: [(0, int(s), "") if s.isdigit() else (1, 0, s) for s in p.parts]  # noqa: E731
    return sorted(found, key=natural)


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
    from collapse import plots

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
        units[f"{name}, generation {g}"] = plots.axis(name).label
        panels[f"{name}, generation {g}"] = np.array(
            [[mean_ci(grid[r, c][0])[0] if (r, c) in grid else np.nan for c in cols] for r in rows])
        body = [[show(r), *(cell(*grid[r, c]) if (r, c) in grid else "" for c in cols)] for r in rows]
        lines += [f"{name} at generation {g}:", "", markdown_table([f"{a} \\ {b}", *map(show, cols)], body), ""]
    if not panels:
        return []
    figure = plots.heatmaps(panels, [show(r) for r in rows], [show(c) for c in cols], a, b,
                            out / "figures" / "heatmap.png", units)
    return lines + [f"![heatmap]({figure.relative_to(out)})", ""]


def write_comparison(rows: list[dict], columns: list[str], out: Path, options: Options) -> Path:
    """Write `out/comparison.md`, its figures and `out/report.json` from summary rows and config columns."""
    from collapse import plots

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
    shown = report.shown_generations(gens, MOST_GENERATIONS)
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
        figure = plots.condition_curves(comp.aggs, headline, comp.labels, out / "figures" / "comparison.png",
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
            figure = plots.condition_curves(comp.aggs, rest, comp.labels, out / "figures" / f"{key}.png", n=comp.n)
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


def run_configs(runs: list[Path], where: dict[str, str] | None = None) -> dict[Path, dict]:
    """{run: its config.json} of the `runs` whose config has the values of `where` (all: none given); a run
    whose config.json cannot be read is named and left out."""
    configs = {}
    for run in runs:
        try:
            configs[run] = load_json(run / "config.json")
        except DataError as e:
            log.warning("skipping %s", e)
    chosen = summary.select(configs, where) if where else configs
    if len(chosen) < len(configs):
        log.info("where %s: %d of %d runs", where, len(chosen), len(configs))
    return chosen


def compare(runs: list[Path], out: Path, options: Options | None = None) -> Path:
    """Write `out/summary.csv` for `runs`, then the comparison from it (`write_comparison`)."""
    options = options or Options()
    rows, columns = summary.collect(run_configs(runs, options.where))
    if not options.aggregate and len(rows) > 200_000:
        log.warning("summary.csv: %d rows, one per replicate; --aggregate writes one per run × generation × metric",
                    len(rows))
    path = summary.write_csv(out / "summary.csv", rows, columns, aggregated=options.aggregate)
    return write_comparison(*summary.read_csv(path), out, options)


def report_all(root: Path) -> list[Path]:
    """Rewrite every comparison below `root` that has a report.json and a summary.csv, from those two files;
    a report.json without its summary.csv is named and skipped."""
    specs = sorted(root.rglob("report.json"))
    if not specs:
        raise DataError(root, "no comparison below it (a report.json beside a summary.csv)")
    made, failed = [], []
    for spec in specs:
        if not (spec.parent / "summary.csv").exists():
            log.warning("%s: no summary.csv beside it (rerun the study to write one); skipped", spec)
            continue
        try:
            made.append(write_comparison(*summary.read_csv(spec.parent / "summary.csv"), spec.parent,
                                         load_options(spec)))
            log.info("%s", made[-1])
        except (ConfigError, DataError) as e:  # an option of this report.json does not fit its summary: the
            log.error("%s: %s", spec, e)        # other studies are still redrawn
            failed.append(spec)
    if failed:
        raise DataError(failed[0], f"{len(failed)} of {len(specs)} comparisons not redrawn (above)")
    for readme in quote.readmes(root):  # the numbers the READMEs quote, from the comparisons just written
        log.info("%s: %s", readme, "quotes rewritten" if quote.rewrite(readme) else "quotes unchanged")
    return made


def _options(args: argparse.Namespace) -> Options:
    """The options of `--spec`, overridden by those given on the command line."""
    options = load_options(args.spec) if args.spec else Options()
    if args.headline:
        options.headline = args.headline.split(",")
    if args.labels:
        options.labels = {**options.labels, **load_json(args.labels)}
    if args.heatmap:
        options.heatmap = args.heatmap.split(",")
    options.complete_only = options.complete_only or args.complete_only
    options.aggregate = options.aggregate or args.aggregate
    for pair in args.where or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError("--where", f"{pair!r} is not KEY=VALUE")
        options.where = {**options.where, key: value}
    return options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="collapse-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path,
                        help="run directories, folders holding them (a multirun), or one summary.csv")
    parser.add_argument("--out", type=Path,
                        help="where the comparison goes (default: the first path, unless a run directory)")
    parser.add_argument("--headline", metavar="M1,M2,M3",
                        help="metrics of the headline figure (default: one per family, e.g. kl_true,distinct_2,"
                             "tail_mass_ratio)")
    parser.add_argument("--labels", type=Path, metavar="FILE",
                        help='JSON file {"condition": "label in words"} (conditions as comparison.md lists them)')
    parser.add_argument("--heatmap", metavar="A,B",
                        help="two config columns for the heatmap (default: when exactly two take several values)")
    parser.add_argument("--complete-only", action="store_true",
                        help="leave incomplete runs out of the aggregates (default: use their finished generations)")
    parser.add_argument("--aggregate", action="store_true",
                        help="write summary.csv with one row per run × generation × metric (n, mean, sd of its "
                             "replicates) rather than one per replicate: for studies with many replicates")
    parser.add_argument("--where", action="append", metavar="KEY=VALUE",
                        help="compare only the runs whose config has this value (repeatable; keys as the "
                             "Conditions table spells them, e.g. sample.temperature=0.8)")
    parser.add_argument("--spec", type=Path, metavar="FILE",
                        help="a report.json to take the options from (those given here override it)")
    parser.add_argument("--all", nargs="?", const=Path("results"), type=Path, metavar="DIR",
                        help="rewrite every comparison below DIR (default results/) from its summary.csv and "
                             "report.json, then the numbers every README below DIR quotes")
    parser.add_argument("--quote", nargs="+", type=Path, metavar="README",
                        help="rewrite the quoted tables and numbers of these READMEs from the comparisons they "
                             "name (summary.csv and report.json; collapse.quote)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _run(args)
    except (ConfigError, DataError) as e:
        print(f"collapse-report: {e}", file=sys.stderr)
        sys.exit(2)


def _run(args: argparse.Namespace) -> None:
    if args.all:
        report_all(args.all)
        return
    if args.quote:
        for readme in args.quote:
            if not readme.exists():
                raise DataError(readme, "does not exist")
            log.info("%s: %s", readme, "quotes rewritten" if quote.rewrite(readme) else "quotes unchanged")
        return
    if not args.paths:
        raise DataError(".", "no paths given (run directories, a summary.csv, or --all)")
    beside = args.paths[0].parent / "report.json"
    if args.paths[0].suffix == ".csv" and not args.spec and beside.exists():
        args.spec = beside  # the options of the comparison it was written with, not the defaults over them
    options = _options(args)
    if args.paths[0].suffix == ".csv":
        log.info("%s", write_comparison(*summary.read_csv(args.paths[0]), args.out or args.paths[0].parent, options))
        return
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        raise DataError(missing[0], "does not exist")
    runs = find_runs(args.paths)
    if not runs:
        print(f"collapse-report: no run directories (with config.json) under {', '.join(map(str, args.paths))}",
              file=sys.stderr)
        sys.exit(2)
    out = args.out or args.paths[0] if len(runs) > 1 or args.out else None
    if out and (out / "config.json").exists():  # its report's figures have the comparison's names
        raise DataError(out, "a run directory: name another folder for the comparison with --out")
    if options.where:  # report only the runs compared
        runs = list(run_configs(runs, options.where))
    for run in runs:
        try:
            log.info("%s", report.write(RunDir(run)))
        except DataError as e:
            log.warning("cannot report %s", e)
    if out:
        log.info("%s", compare(runs, out, options))


if __name__ == "__main__":
    main()
