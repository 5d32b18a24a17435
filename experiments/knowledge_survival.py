"""Survival of facts by their training count, beside the categorical refit's (docs/metrics.md#knowledge-and-
hallucination): for every generation, replicate and fact of `data=facts` runs, the fact's true statements c in
that generation's training set (rebuilt from train_provenance.npy and train_index.npy) against whether the
generation's samples state it truly at least once, and the model's closed-book probability of its true value.

    uv run python experiments/knowledge_survival.py runs/knowledge_collapse/cpu/*/ \\
        --out results/knowledge_collapse/figures/survival.png

Beside the measured share, a model that refits the statement frequencies exactly (the categorical family,
Suresh et al. 2024): 1 - exp(-c S'/S), S and S' the statements of the training set and of the samples. Writes
the figure and, beside it, the numbers (`survival.csv`: condition, count bin, facts, shares); prints them.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from collapse.config import from_dict
from collapse.data import FactsConfig
from collapse.data.facts import make_world
from collapse.files import load_array, load_json
from collapse.metrics import knowledge
from collapse.store import RunDir

BINS = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, 20), (21, 50), (51, 10**9)]


def condition(cfg) -> str:
    """A run's condition in words: its regime (the human share of mix) and training target."""
    regime = cfg.regime.name + (f" {cfg.regime.human_fraction:g}" if cfg.regime.name == "mix" else "")
    return f"{regime}, {cfg.train.target}"


def generation_facts(store: RunDir, world, g: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(training count c `[F]`, stated truly in the samples `[F]`, closed-book probability `[F]`, S'/S) of
    generation g, replicate r."""
    prov, index = load_array(store.array(g, r, "train_provenance")), load_array(store.array(g, r, "train_index"))
    slot = r if store.human_replicates() else None
    human = np.concatenate([load_array(store.human("train", slot)), load_array(store.human("fresh", slot))])
    pools = {j: load_array(store.array(j, r, "samples")) for j in set(prov.tolist()) - {-1}}
    rows = np.stack([human[i] if j == -1 else pools[j][i] for j, i in zip(prov.tolist(), index.tolist())])
    truth_F = knowledge.true_value_F(world)
    train_FW = knowledge.fact_value_counts(world, rows)
    samples_FW = load_array(store.array(g, r, "fact_counts"))
    ratio = samples_FW.sum() / max(train_FW.sum(), 1)
    F = np.arange(world.n_facts)
    return (train_FW[F, truth_F], samples_FW[F, truth_F] > 0,
            load_array(store.array(g, r, "closed_book_prob")).astype(np.float64), float(ratio))


def collect(run_dirs: list[Path]) -> dict[str, dict[str, list[np.ndarray]]]:
    """{group: {"c", "stated", "prob", "ratio"}: arrays pooled over runs, generations, replicates}; groups:
    generation 0 (human data), then each condition's later generations."""
    groups: dict[str, dict[str, list]] = {}
    for path in run_dirs:
        store = RunDir(path)
        cfg = from_dict(load_json(store.path / "config.json"))
        if not isinstance(cfg.data, FactsConfig):
            continue
        world = make_world(cfg.data)
        for g in store.generations():
            if not store.is_done(g, "score"):
                continue
            name = "generation 0 (human data)" if g == 0 else f"generations ≥ 1: {condition(cfg)}"
            for r in store.replicates(g):
                c, stated, prob, ratio = generation_facts(store, world, g, r)
                group = groups.setdefault(name, {"c": [], "stated": [], "prob": [], "ratio": []})
                for key, value in (("c", c), ("stated", stated), ("prob", prob), ("ratio", np.full(len(c), ratio))):
                    group[key].append(value)
    return groups


def table(groups) -> list[dict]:
    rows = []
    for name, group in groups.items():
        c, stated, prob, ratio = (np.concatenate(group[k]) for k in ("c", "stated", "prob", "ratio"))
        for lo, hi in BINS:
            sel = (c >= lo) & (c <= hi)
            if sel.any():
                theory = float(np.mean(1 - np.exp(-c[sel] * ratio[sel])))
                count = f"{lo}" if lo == hi else f"{lo}-{hi}" if hi < 10**9 else f">{lo - 1}"
                rows.append({"group": name, "count": count,
                             "c_mean": float(c[sel].mean()), "facts": int(sel.sum()),
                             "stated": float(stated[sel].mean()), "refit": theory,
                             "closed_book_prob": float(prob[sel].mean())})
    return rows


def draw(rows: list[dict], out: Path) -> None:
    from collapse.plots.style import plt, save

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(row["group"] for row in rows):
        mine = [row for row in rows if row["group"] == name and row["c_mean"] > 0]
        x = [row["c_mean"] for row in mine]
        line, = left.plot(x, [row["stated"] for row in mine], "o-", ms=3, label=name)
        left.plot(x, [row["refit"] for row in mine], "--", color=line.get_color(), lw=1)
        right.plot(x, [row["closed_book_prob"] for row in mine], "o-", ms=3, color=line.get_color(), label=name)
    left.plot([], [], "k--", lw=1, label="exact refit: 1 − exp(−c S′/S)")
    for ax, title in ((left, "stated truly in the samples"), (right, "closed-book p(true value)")):
        ax.set_xscale("log")
        ax.set_xlabel("true statements of the fact in the training set (c)")
        ax.set_ylabel("share of facts" if ax is left else "mean probability")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
    left.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    save(fig, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories of data=facts studies")
    parser.add_argument("--out", type=Path, required=True, help="the figure (survival.csv is written beside it)")
    args = parser.parse_args()
    rows = table(collect(args.runs))
    if not rows:
        raise SystemExit("no finished data=facts generations in the run directories given")
    draw(rows, args.out)
    with open(args.out.with_name("survival.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("| group | c | facts | stated truly | exact refit | closed-book p |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['group']} | {row['count']} | {row['facts']} | {row['stated']:.3f} | {row['refit']:.3f} | "
              f"{row['closed_book_prob']:.3f} |")


if __name__ == "__main__":
    main()
