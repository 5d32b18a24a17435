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
Directories without a readable config.json are skipped with a note. An ecosystem's labs (`labs/<name>/`) are
runs whose condition includes the lab (its name, what it reads, crawls and posts) and the ecosystem (how many
labs, how they share the human data, the web); the ecosystem's own rows
(between labs, and of the whole) are a run whose lab is "*".
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


from collapse import comparison, quote, report, summary
from collapse.pooling import Options, load_options
from collapse.errors import ConfigError, DataError
from collapse.files import load_json
from collapse.metrics.ecosystem import ALL as ECOSYSTEM
from collapse.store import RunDir

log = logging.getLogger("collapse")

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


def run_configs(runs: list[Path], where: dict[str, str] | None = None) -> dict[Path, dict]:
    """{run: its config.json} of the `runs` whose config has the values of `where` (all: none given); a run
    whose config.json cannot be read is named and left out."""
    configs = {}
    for run in runs:
        try:
            cfg = load_json(run / "config.json")
            if cfg.get("labs"):  # an ecosystem: each lab is a run (labs/<name>/); the ecosystem's own rows, a
                labs = {lab["name"]: {k: v for k, v in lab.items() if k != "name"} for lab in cfg["labs"]}
                configs[run] = {**cfg, "lab": {"name": ECOSYSTEM}, "ecosystem": _ecosystem(cfg), "labs": labs}
                continue
            configs[run] = {**cfg, **_lab(run)}
        except DataError as e:
            log.warning("skipping %s", e)
    chosen = summary.select(configs, where) if where else configs
    if len(chosen) < len(configs):
        log.info("where %s: %d of %d runs", where, len(chosen), len(configs))
    return chosen


def _lab(run: Path) -> dict:
    """A lab of an ecosystem (`<ecosystem>/labs/<name>/`): {"lab": its name and intake}, so that labs are
    conditions (its own config.json holds its settings, not who it reads); {} for any other run."""
    eco = run.parent.parent / "config.json"
    if run.parent.name != "labs" or not eco.exists():
        return {}
    eco = load_json(eco)
    lab = next(lab for lab in eco["labs"] if lab["name"] == run.name)
    return {"lab": {key: value for key, value in lab.items() if key != "set"}, "ecosystem": _ecosystem(eco)}


def _ecosystem(cfg: dict) -> dict:
    """What a lab's own config.json does not say of the ecosystem it is part of: how many labs share the human
    data, and how (so that lab a of 2 labs and lab a of 4 are different conditions)."""
    return {"labs": len(cfg["labs"]), **{f"human.{k}": v for k, v in cfg.get("human", {}).items()},
            **{f"web.{k}": v for k, v in cfg.get("web", {}).items()}}


def compare(runs: list[Path], out: Path, options: Options | None = None) -> Path:
    """Write `out/summary.csv` for `runs`, then the comparison from it (`comparison.write`)."""
    options = options or Options()
    rows, columns = summary.collect(run_configs(runs, options.where))
    if not options.aggregate and len(rows) > 200_000:
        log.warning("summary.csv: %d rows, one per replicate; --aggregate writes one per run × generation × metric",
                    len(rows))
    path = summary.write_csv(out / "summary.csv", rows, columns, aggregated=options.aggregate)
    return comparison.write(*summary.read_csv(path), out, options)


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
            made.append(comparison.write(*summary.read_csv(spec.parent / "summary.csv"), spec.parent,
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
        log.info("%s", comparison.write(*summary.read_csv(args.paths[0]), args.out or args.paths[0].parent, options))
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
