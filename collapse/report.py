"""Per-run report: aggregate `metrics.jsonl` across replicates, print one line per generation,
write `report.md` with one per-generation table and figure per family of metrics, the per-sequence
perplexity histograms, rank-frequency curves and bucket masses (`figures/*.png`). Tolerates runs still in
progress and runs whose older generations lack some files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from collapse.config import ANALYTIC_MODELS
from collapse.errors import DataError
from collapse.stats import aggregate
from collapse.files import atomic_write, load_json
from collapse.store import PHASES, RunDir
from collapse.metrics import score  # noqa: F401  (importing it declares the metric families)
from collapse.metrics.families import declared, family_of
from collapse.plots import per_run
from collapse.tables import markdown_table, shown_generations, table

log = logging.getLogger("collapse")

SHOWN = ("ppl_human_test", "kl_true", "ppl_gen0", "self_bleu4", "distinct_2", "tail_mass_ratio", "survival")

def panel(name: str) -> str:
    """The figure panel a metric is drawn in: related metrics (the buckets of one ratio, distinct-1..4, the
    per-sequence perplexity summaries) share one."""
    for bucket in ("head_", "torso_", "tail_"):
        if name.startswith(bucket):
            return name[len(bucket):]
    if name.startswith("survival"):
        return "survival_true" if name.endswith("_true") else "survival"
    if name.startswith("distinct_"):
        return "distinct_n"
    if name.startswith("ppl_gen0_"):
        return "ppl_gen0 per sequence"
    if name.startswith("curate_score_mean_"):
        return "curate_score_mean (candidates, kept)"
    for base in ("closed_book_prob", "closed_book_acc", "hallucination_rate", "factual_precision", "fact_coverage",
                 "error_repeat"):  # knowledge: a metric with its buckets, error_repeat with its chance rate
        if name.startswith(base):
            return base
    return name


def sort_key(name: str) -> tuple:
    """Headline metrics first, in `SHOWN` order, then the rest alphabetically."""
    return (name not in SHOWN, SHOWN.index(name) if name in SHOWN else 0, name)


def print_generation(g: int, rows: list[dict], seconds: float, note: str = "", shown: tuple[str, ...] = SHOWN) -> None:
    """One log line: the `shown` metrics of generation g, or all of them if none is (analytic families), the
    seconds it took and a `note` (e.g. which phases were loaded from the run directory rather than run)."""
    agg = aggregate(rows)
    names = [name for name in shown if name in agg] or sorted(agg, key=sort_key)
    parts = [f"{name} {np.mean(agg[name][g]):.4g}" for name in names if g in agg[name]]
    log.info("gen %d | %s | %.1fs%s", g, " | ".join(parts), seconds, f" ({note})" if note else "")


def constant_metrics(rows: list[dict]) -> dict[str, float]:
    """{metric: value} of the metrics that take one value in every generation and replicate of two or more
    generations (distinct_1 of a grammar whose every symbol occurs, survival 1): a panel would show a flat
    line, so the report names them in a line of text instead."""
    values: dict[str, list[float]] = {}
    gens: dict[str, set[int]] = {}
    for row in rows:
        if row["value"] is not None:
            values.setdefault(row["metric"], []).append(row["value"])
            gens.setdefault(row["metric"], set()).add(row["generation"])
    return {name: v[0] for name, v in values.items()
            if len(gens[name]) > 1 and np.allclose(v, v[0], rtol=1e-9, atol=1e-12)}


def reference_values(reference: list[dict[str, float]] | None) -> dict[str, float]:
    """{metric: mean over the human reference rows (one per human dataset)} of the metrics they have."""
    names = dict.fromkeys(n for row in reference or [] for n, v in row.items() if v is not None)
    return {n: float(np.mean([row[n] for row in reference if row.get(n) is not None])) for n in names}


def _theory(cfg: dict, generations: int) -> dict[str, np.ndarray]:
    """The analytic family's closed forms for this run's model and regime (`theory` of its module); {} for a
    run without a config."""
    from collapse.config import from_dict
    from collapse.families import analytic

    if not cfg or not generations:
        return {}
    config = from_dict(cfg)
    return analytic.family(config.model).theory(config.model, config.regime, generations)


def _metrics_section(store: RunDir, key: str, shown: list[str], rows: list[dict], analytic: bool,
                     reference: list[dict] | None, theory: dict[str, np.ndarray]) -> list[str]:
    """One family's table, its figure `figures/<key>.png` (one panel per `panel`, the metrics constant over the
    run left out) and one line naming the constant ones."""
    from collapse.plots import curves, style

    constant = constant_metrics([row for row in rows if row["metric"] in shown])
    panels: dict[str, list[str]] = {}
    for n in shown:
        if n not in constant:
            panels.setdefault(n if analytic else panel(n), []).append(n)
    title = declared()[key].title if key in declared() else "Metrics"
    lines = [f"## {title}", "", table(rows, shown, reference), ""]
    if panels:
        log_y = {n for n in shown if analytic and style.axis(n).kind == "ratio"}  # shrink by orders of magnitude
        figure = curves.metric_curves(rows, panels, store.path / "figures" / f"{key}.png", reference_values(reference),
                                     theory, log_y)
        lines += [f"![{key}]({figure.relative_to(store.path)})", ""]
        if theory.keys() & set(shown):
            lines += [f"Dashed black: the expectation in closed form ({', '.join(n for n in shown if n in theory)}; "
                      "collapse/families/). Ratios on a log axis.", ""]
    else:
        (store.path / "figures" / f"{key}.png").unlink(missing_ok=True)
    if constant:
        lines += ["Constant in every generation and replicate (no panel): "
                  + ", ".join(f"{n} = {v:.4g}" for n, v in constant.items()) + ".", ""]
    return lines


def _marker(store: RunDir, g: int, phase: str) -> dict:
    try:
        return load_json(store.marker(g, phase))
    except DataError:  # a damaged marker must not stop the report of everything else
        return {}


def _interval_note(cfg: dict) -> str:
    """What the replicate interval varies over (docs/metrics.md)."""
    if cfg.get("data", {}).get("_option") in ("grammar", "facts"):
        return ("Each replicate draws its own human data from the truth, so the interval includes the sampling "
                "noise of the human data as well as that of training, sampling and scoring.")
    return ("The replicates share one human corpus and its split (fixed by the seed), so the interval covers "
            "training, sampling and scoring randomness, not the draw of the human data; seeds vary the split.")


def _phases_table(store: RunDir) -> str:
    """Seconds per phase of every generation with a directory ("—": not done) and the device it ran on."""
    body = []
    for g in store.generations():
        info = {p: _marker(store, g, p) for p in PHASES if store.is_done(g, p)}
        cells = [f"{info[p].get('seconds', float('nan')):.1f}s" if p in info else "—" for p in PHASES]
        body.append([str(g), *cells, next((i.get("device", "") for i in info.values()), "")])
    return markdown_table(["generation", *PHASES, "device"], body)


def _provenance_section(store: RunDir) -> list[str]:
    """The model of each generation, its training set's composition by origin (mean share over replicates) and
    mean synthetic depth (`provenance.json`), as a table and `figures/provenance.png`; [] if none is written."""
    from collapse.plots import distributions

    records = {}
    for g in store.generations():
        path = store.provenance(g)
        if path.exists() and store.is_done(g, "train"):
            try:
                records[g] = load_json(path)
            except DataError:
                continue
    if not records:
        return []
    shares = {g: {o: float(np.mean([rep["by_origin"].get(o, 0) / rep["size"] for rep in rec["replicates"]]))
                  for o in {o for rep in rec["replicates"] for o in rep["by_origin"]}} for g, rec in records.items()}
    depths = {g: rec["mean_depth"] for g, rec in records.items()}
    figure = distributions.provenance(shares, depths, store.path / "figures" / "provenance.png")
    body = [[str(g), rec["model"], f"{rec['parameters']:,}", f"{shares[g].get('human', 0.0):.3g}", f"{depths[g]:.4g}",
             ", ".join(f"{o} {s:.3g}" for o, s in sorted(shares[g].items(), key=lambda x: -x[1])[:4])]
            for g, rec in records.items()]
    return ["## Provenance", "", "Each generation's model and training set: the share of human data and of each "
            "generation's samples (mean over replicates; largest four listed) and the mean synthetic depth (human "
            "data 0, a sample of generation j: 1 + the mean depth of generation j's training set). Per-origin "
            "scores: gen_NNN/provenance.json.", "",
            markdown_table(["generation", "model", "parameters", "human share", "mean depth", "composition"], body),
            "", f"![provenance]({figure.relative_to(store.path)})", ""]


def write(store: RunDir, rows: list[dict] | None = None) -> Path:
    """(Re)write `report.md` and `figures/` from what the run directory holds now (`rows`: its metrics.jsonl,
    when the caller has them at hand)."""
    rows = store.read_metrics() if rows is None else rows
    names = list(dict.fromkeys(row["metric"] for row in rows))  # in the order the score phase writes them
    cfg = load_json(store.path / "config.json") if (store.path / "config.json").exists() else {}
    analytic = bool(cfg) and cfg["model"]["_option"] in ANALYTIC_MODELS
    lines = [f"# collapse run `{store.path.name}`", ""]
    if cfg:
        model = f"model **{cfg['model']['_option']}**"
        source = model if analytic else f"data **{cfg['data']['_option']}**, {model}"
        lines += [f"regime **{cfg['regime']['_option']}**, {source}, "
                  f"{cfg['replicates']} replicate(s), seed {cfg['seed']}, "
                  f"{len(store.finished_generations())}/{cfg['generations']} generations complete.", ""]
    reference = load_json(store.human_reference) if store.human_reference.exists() else None
    if isinstance(reference, dict):  # written before one row per human dataset
        reference = [reference]
    if analytic:
        lines += ["Mean ± 95 % t-interval across replicates. Definitions: the family's module in "
                  "collapse/families/.", ""]
    else:
        lines += ["Mean ± 95 % t-interval across replicates. The `human` row measures the human train split (and, "
                  "for", "the grammar, the true language as the model). Definitions: docs/metrics.md.", "",
                  _interval_note(cfg), ""]
    gens = sorted({row["generation"] for row in rows})
    n_shown = len(shown_generations(gens))
    if n_shown < len(gens):
        lines += [f"{n_shown} of {len(gens)} generations shown (log-spaced); metrics.jsonl "
                  "has every generation.", ""]
    # analytic families: one family of metrics, one panel each, read against the family's closed forms
    sections = {"metrics": names} if analytic else {key: [n for n in names if family_of(n) == key]
                                                    for key in declared()}
    theory = _theory(cfg, max(gens) + 1) if analytic and gens else {}
    for key, shown in sections.items():
        if shown:
            lines += _metrics_section(store, key, shown, rows, analytic, reference, theory)
            if key == "curation":
                lines += per_run.curation_figure(store, cfg.get("curate", {}).get("_option", ""))
    if rows and not analytic:
        # tokens scored per sequence: in continuation mode, the continuation after the human prompt
        sample = cfg.get("sample", {})
        seq_len = cfg["data"]["seq_len"] - (sample["prompt_len"] if sample.get("mode") == "continuation" else 0) \
            if cfg else 1
        shown = per_run.histogram_generations(store.finished_generations())
        which = f"generations {', '.join(map(str, shown))}" + (f" of {len(store.finished_generations())}, log-spaced"
                                                               if len(shown) < len(store.finished_generations()) else "")
        lines += ["## Distributions", "", f"Per-sequence histograms (replicates pooled; {which}), rank-frequency "
                  "curves (the same generations) and the share of tokens per human frequency bucket (mean over "
                  "replicates).", "", *per_run.distribution_figures(store, seq_len), ""]
    if store.program_marker.exists():  # analytic families: one program, no phases
        info = load_json(store.program_marker)
        lines += ["## Compute", "", f"All {info['generations']} generations × {info['replicates']} replicates in one "
                  f"compiled program: {info['seconds']:.2f} s (+ {info['compile_seconds']:.2f} s compilation) on "
                  f"{info['device']}.", ""]
    else:
        lines += [*_provenance_section(store), "## Phases", "", _phases_table(store)]
    path = store.path / "report.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path
