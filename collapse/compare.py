"""`collapse-report`: rewrite the reports of run directories and compare several runs (e.g. a sweep).

    uv run collapse-report runs/my-run                  # rewrite runs/my-run/report.md and figures
    uv run collapse-report runs/sweep --out runs/sweep   # every run below runs/sweep, plus comparison.md

Runs are grouped by the config values that differ between them, seeds pooled: a group's value at a
generation is the mean over its independent units with a 95 % t-interval (`pooled_rows`: seeds × replicates
where every replicate drew its own human data; seeds where replicates share a corpus split). Runs still in progress
contribute their finished generations; directories without a readable config.json are skipped with a note.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from collapse import report
from collapse.config import ANALYTIC_MODELS, RESUMABLE_KEYS, flatten
from collapse.errors import DataError
from collapse.stats import aggregate, mean_ci
from collapse.store import RunDir, atomic_write, load_json
from collapse.tables import ci_cell, markdown_table

log = logging.getLogger("collapse")


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories (holding config.json) at or below `paths`, in a stable order."""
    found = set()
    for path in paths:
        if (path / "config.json").exists():
            found.add(path.resolve())
        found.update(p.parent.resolve() for p in path.glob("**/config.json"))
    return sorted(found)


# Never part of a group label: the seed (pooled) and the keys that change no result (config.RESUMABLE_KEYS).
IGNORED = ("seed", *RESUMABLE_KEYS)


def group_runs(configs: dict[Path, dict]) -> dict[str, list[Path]]:
    """{label: runs}: a label names the config values that differ between runs (seeds pooled)."""
    flat = {run: flatten(cfg) for run, cfg in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    varying = [k for k in keys if k not in IGNORED and len({repr(f.get(k)) for f in flat.values()}) > 1]
    groups: dict[str, list[Path]] = {}
    for run, f in flat.items():
        # keys a run's config does not have (fields of another regime, say) stay out of its label
        label = " ".join(f"{k.replace('._option', '')}={f[k]}" for k in varying if k in f) or "all runs"
        groups.setdefault(label, []).append(run)
    return groups


def shared_human_data(cfg: dict) -> bool:
    """Whether a run's replicates share their human data (one text corpus split once per seed), or each drew
    its own (the grammar and the analytic families)."""
    return cfg.get("data", {}).get("_option") in ("text", "hf") and cfg["model"]["_option"] not in ANALYTIC_MODELS


def pooled_rows(rows_by_run: dict[Path, list[dict]], shared: bool) -> tuple[list[dict], str]:
    """The rows of a group's runs (its seeds) with one value per independent unit, and the units in words.

    Where every replicate drew its own human data, each (seed, replicate) is a unit. Where a seed's
    replicates share one corpus split, they are not independent draws of the data: with two or more seeds,
    a seed's replicates are averaged and the seeds are the units (so the interval includes the split's
    noise); with one seed the replicates are the units, and the interval is conditional on its split."""
    if not shared or len(rows_by_run) < 2:
        rows = [{**row, "replicate": (i, row["replicate"])}
                for i, run_rows in enumerate(rows_by_run.values()) for row in run_rows]
        n = len({row["replicate"] for row in rows})
        what = "replicates of one corpus split" if shared else "seeds × replicates, each with its own human data"
        return rows, f"{n} units: {what}"
    rows = []
    for i, run_rows in enumerate(rows_by_run.values()):
        agg = aggregate(run_rows)
        rows += [{"generation": g, "replicate": (i,), "metric": name, "value": float(np.mean(values))}
                 for name, by_gen in agg.items() for g, values in by_gen.items()]
    return rows, f"{len(rows_by_run)} units: seeds (each the mean of its replicates, which share its corpus split)"


def compare(runs: list[Path], out: Path) -> Path:
    """Write `out/comparison.md` and `out/figures/comparison.png` for `runs`."""
    from collapse import plots

    configs, rows_by_group = {}, {}
    for run in runs:
        try:
            configs[run] = load_json(run / "config.json")
        except DataError as e:
            log.warning("skipping %s", e)
    groups = group_runs(configs)
    units = {}
    for label, members in groups.items():
        rows_by_group[label], units[label] = pooled_rows({run: RunDir(run).read_metrics() for run in members},
                                                         shared_human_data(configs[members[0]]))
    names = sorted({row["metric"] for rows in rows_by_group.values() for row in rows}, key=report.sort_key)
    lines = [f"# Comparison of {len(configs)} runs", "",
             "Mean ± 95 % t-interval over the independent units of a group, per generation (see Runs for the "
             "units of each group).", ""]
    aggs = {label: aggregate(rows) for label, rows in rows_by_group.items()}  # {label: {metric: {g: values}}}
    for name in names:
        lines += [f"## {name}", "", _group_table(rows_by_group, aggs, name), ""]
    if names:
        figure = plots.group_curves(aggs, names, out / "figures" / "comparison.png")
        lines += [f"![comparison]({figure.relative_to(out)})", ""]
    lines += ["## Runs", ""] + [f"- `{label}` ({units[label]}): " + ", ".join(f"`{r}`" for r in members)
                                for label, members in groups.items()]
    path = out / "comparison.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path


def _group_table(rows_by_group: dict[str, list[dict]], aggs: dict[str, dict], name: str) -> str:
    gens = sorted({row["generation"] for rows in rows_by_group.values() for row in rows if row["metric"] == name})
    body = []
    for label, agg_by_metric in aggs.items():
        agg = agg_by_metric.get(name, {})
        body.append([label, *(ci_cell(*mean_ci(agg[g])) if g in agg else "" for g in gens)])
    return markdown_table(["group", *(f"gen {g}" for g in gens)], body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="collapse-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="run directories or folders holding them")
    parser.add_argument("--out", type=Path, help="where comparison.md goes (default: the first path)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs = find_runs(args.paths)
    if not runs:
        print(f"collapse-report: no run directories (with config.json) under {', '.join(map(str, args.paths))}",
              file=sys.stderr)
        sys.exit(2)
    for run in runs:
        try:
            log.info("%s", report.write(RunDir(run)))
        except DataError as e:
            log.warning("cannot report %s", e)
    if len(runs) > 1:
        log.info("%s", compare(runs, args.out or args.paths[0]))


if __name__ == "__main__":
    main()
