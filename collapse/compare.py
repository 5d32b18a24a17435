"""`collapse-report`: rewrite the reports of run directories and compare several runs (e.g. a sweep).

    uv run collapse-report runs/my-run                  # rewrite runs/my-run/report.md and figures
    uv run collapse-report runs/sweep --out runs/sweep   # every run below runs/sweep, plus comparison.md

Runs are grouped by the config values that differ between them, seeds pooled: a group's value at a
generation is the mean over all its seeds' replicates with a 95 % t-interval. Runs still in progress
contribute their finished generations; directories without a readable config.json are skipped with a note.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from collapse import report
from collapse.config import RESUMABLE_KEYS, flatten
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
    for label, members in groups.items():
        rows = []
        for i, run in enumerate(members):  # pool seeds: every (run, replicate) is one sample
            for row in RunDir(run).read_metrics():
                rows.append({**row, "replicate": (i, row["replicate"])})
        rows_by_group[label] = rows
    names = sorted({row["metric"] for rows in rows_by_group.values() for row in rows}, key=report.sort_key)
    lines = [f"# Comparison of {len(configs)} runs", "",
             "Mean ± 95 % t-interval over all seeds and replicates of a group, per generation.", ""]
    aggs = {label: aggregate(rows) for label, rows in rows_by_group.items()}  # {label: {metric: {g: values}}}
    for name in names:
        lines += [f"## {name}", "", _group_table(rows_by_group, aggs, name), ""]
    if names:
        figure = plots.group_curves(aggs, names, out / "figures" / "comparison.png")
        lines += [f"![comparison]({figure.relative_to(out)})", ""]
    lines += ["## Runs", ""] + [f"- `{label}`: " + ", ".join(f"`{r}`" for r in members)
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
