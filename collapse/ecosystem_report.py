"""The report of a study of several labs (docs/ecosystems.md): `report.md` in the study's own directory, beside
each lab's own report (`labs/<name>/report.md`, written by `collapse.report` as for a single-lab study): who
learns from whom, each headline metric per lab, the between-lab and ecosystem rows, and one figure with a line
per lab."""

from __future__ import annotations

from pathlib import Path

from collapse.files import atomic_write, load_json
from collapse.labs import EVERY_LAB
from collapse.metrics.ecosystem import ALL
from collapse.report import SHOWN
from collapse.stats import aggregate, mean_ci
from collapse.store import RunDir
from collapse.tables import ci_cell, markdown_table, shown_generations, table

BETWEEN = ("homogenisation_js", "labs_mean_kl_true", "kl_true_mixture", "labs_mean_ppl_human_test", "union_distinct_2",
           "union_tail_mass_ratio", "web_synthetic_share", "web_mean_depth")
PAIR = ("js_pair", "kl_pair_ab", "kl_pair_ba", "cross_ppl_ab", "cross_ppl_ba", "bigram_overlap", "private_gain_ab",
        "private_gain_ba")


def _who(lab: dict) -> str:
    """A lab's intake in words: what it reads, crawls and posts."""
    parts = []
    if lab.get("crawl"):
        parts.append(f"crawls {lab['crawl']} rows of the web")
    else:
        reads = lab.get("reads") or {lab["name"]: 1.0}
        parts.append("reads " + ", ".join(f"{'every lab' if name == EVERY_LAB else name} {w:g}"
                                          for name, w in reads.items()))
    if lab.get("post_fraction"):
        parts.append(f"posts {lab['post_fraction']:g} of its samples")
    return "; ".join(parts)


def _by_lab(rows: list[dict], name: str, labs: list[str]) -> str:
    """Generation × lab table of one metric (mean ± 95 % CI across replicates)."""
    aggs = {lab: aggregate([row for row in rows if row.get("lab") == lab]).get(name, {}) for lab in labs}
    gens = shown_generations(sorted({g for agg in aggs.values() for g in agg}))
    body = [[str(g), *(ci_cell(*mean_ci(aggs[lab][g])) if g in aggs[lab] else "" for lab in labs)] for g in gens]
    return markdown_table(["generation", *labs], body)


def write(store: RunDir, rows: list[dict] | None = None) -> Path:
    """(Re)write the ecosystem's `report.md` and `figures/labs.png` from what its directory holds now."""
    from collapse.plots import curves

    rows = store.read_metrics() if rows is None else rows
    cfg = load_json(store.path / "config.json")
    labs = [lab["name"] for lab in cfg["labs"]]
    rounds = len(store.finished_generations())
    lines = [f"# collapse ecosystem `{store.path.name}`", "",
             f"{len(labs)} labs, data **{cfg['data']['_option']}**, {cfg['replicates']} replicate(s), seed "
             f"{cfg['seed']}, {rounds}/{cfg['generations']} rounds complete; human.shared_fraction "
             f"{cfg.get('human', {}).get('shared_fraction', 1.0):g}. Mean ± 95 % t-interval across replicates; "
             "definitions: docs/metrics.md and docs/ecosystems.md.", "", "## Labs", ""]
    body = [[f"[{lab['name']}](labs/{lab['name']}/report.md)", _who(lab),
             ", ".join(f"{k}={v}" for k, v in lab.get("set", {}).items()) or "the study's"] for lab in cfg["labs"]]
    lines += [markdown_table(["lab", "intake", "its own settings"], body), ""]
    names = [n for n in SHOWN if any(row["metric"] == n and row.get("lab") in labs for row in rows)]
    if names:
        figure = curves.condition_curves({lab: aggregate([row for row in rows if row.get("lab") == lab])
                                          for lab in labs}, names, {lab: lab for lab in labs},
                                         store.path / "figures" / "labs.png")
        lines += ["## Each lab", "", f"![labs]({figure.relative_to(store.path)})", ""]
        for name in names:
            lines += [f"**{name}**", "", _by_lab(rows, name, labs), ""]
    whole = [row for row in rows if row.get("lab") == ALL]
    shown = [n for n in BETWEEN if any(row["metric"] == n for row in whole)]
    if shown:
        lines += ["## The ecosystem", "", "Homogenisation (mean JS between the labs' models), the KL from the truth "
                  "to the labs' mixture, the diversity and tails of the labs' samples pooled (as many rows as one "
                  "lab's) and the web's composition after each round. Every row: gen_NNN/metrics.jsonl (lab \"*\").",
                  "", table(whole, shown), ""]
    for pair in dict.fromkeys(row["lab"] for row in rows if "|" in str(row.get("lab"))):
        a, b = pair.split("|")
        lines += [f"## {a} and {b}", "", f"`_ab`: {a}'s model or samples against {b}'s.", "",
                  table([row for row in rows if row.get("lab") == pair], list(PAIR)), ""]
    path = store.path / "report.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path
