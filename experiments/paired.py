"""The difference of two conditions of a comparison paired by seed, from its summary.csv: the numbers a results
README cannot quote (collapse.quote quotes one condition's mean ± 95 %), where two conditions share each seed's
corpus split and so pair by seed.

    uv run python experiments/paired.py results/gerstgrasser2024_text ppl_human_test 3 replace accumulate

prints, for each generation asked (`3` or `3,7`), each seed's value of either condition (the mean of its
replicates, the seed's unit as comparison.md pools it), their difference, and its mean ± 95 % t-interval over
the seeds; the conditions by their labels (report.json's `labels`, or the words comparison.md gives them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from collapse import quote, summary
from collapse.stats import mean_ci
from collapse.tables import ci_cell


def seed_values(folder: Path, metric: str, label: str) -> dict[int, dict[int, float]]:
    """{seed: {generation: the mean over the seed's replicates}} of the condition labelled `label`."""
    comp = quote._comparison(folder)
    key = quote._rows(comp, [label], str(folder))[0]
    rows, _ = summary.read_csv(folder / "summary.csv")
    cells: dict[int, dict[int, list[float]]] = {}
    for row in rows:
        if row["run"] in comp.members[key] and row["metric"] == metric and row["value"] is not None:
            value = getattr(row["value"], "mean", row["value"])
            cells.setdefault(comp.runs[row["run"]]["seed"], {}).setdefault(row["generation"], []).append(value)
    return {seed: {g: float(np.mean(v)) for g, v in by_gen.items()} for seed, by_gen in cells.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a comparison's folder (summary.csv, report.json)")
    parser.add_argument("metric")
    parser.add_argument("generations", help="one generation or several, comma-separated")
    parser.add_argument("first", help="the label of the condition subtracted from")
    parser.add_argument("second", help="the label of the condition subtracted")
    args = parser.parse_args()
    a, b = (seed_values(args.folder, args.metric, label) for label in (args.first, args.second))
    for g in (int(s) for s in args.generations.split(",")):
        seeds = sorted(s for s in a if s in b and g in a[s] and g in b[s])
        diffs = [a[s][g] - b[s][g] for s in seeds]
        for s, d in zip(seeds, diffs):
            print(f"generation {g} seed {s}: {a[s][g]:.4g} - {b[s][g]:.4g} = {d:.4g}")
        print(f"generation {g}: {args.first} - {args.second}, paired over {len(seeds)} seeds: "
              f"{ci_cell(*mean_ci(diffs)) if diffs else 'no common seed'}")


if __name__ == "__main__":
    main()
