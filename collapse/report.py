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
from collapse.stats import aggregate, mean_ci
from collapse.files import atomic_write, load_array, load_json
from collapse.store import PHASES, RunDir
from collapse.metrics.families import declared, family_of
from collapse.tables import ci_cell, markdown_table

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
    return name


def sort_key(name: str) -> tuple:
    """Headline metrics first, in `SHOWN` order, then the rest alphabetically."""
    return (name not in SHOWN, SHOWN.index(name) if name in SHOWN else 0, name)


def print_generation(g: int, rows: list[dict], seconds: float, note: str = "") -> None:
    """One log line: the `SHOWN` metrics of generation g, or all of them if none is (analytic families), the
    seconds it took and a `note` (e.g. which phases were loaded from the run directory rather than run)."""
    agg = aggregate(rows)
    names = [name for name in SHOWN if name in agg] or sorted(agg, key=sort_key)
    parts = [f"{name} {np.mean(agg[name][g]):.4g}" for name in names if g in agg[name]]
    log.info("gen %d | %s | %.1fs%s", g, " | ".join(parts), seconds, f" ({note})" if note else "")


def shown_generations(generations: list[int], most: int = 25) -> list[int]:
    """All of `generations` if at most `most`, else the first, the last and log-spaced ones between (collapse
    moves fastest early)."""
    if len(generations) <= most:
        return list(generations)
    index = np.unique(np.round(np.geomspace(1, len(generations), most)).astype(int) - 1)
    return [generations[i] for i in index]


def table(rows: list[dict], names: list[str], reference: list[dict[str, float]] | None = None, most: int = 25) -> str:
    """Markdown table: mean ± 95 % CI across replicates for (at most `most`, see `shown_generations`)
    generations; first the human reference (mean ± 95 % CI over its rows: one per human dataset)."""
    agg = aggregate(rows)
    gens = shown_generations(sorted({row["generation"] for row in rows}), most)
    body = []
    if reference:
        values = {n: [row[n] for row in reference if row.get(n) is not None] for n in names}
        body.append(["human", *(ci_cell(*mean_ci(values[n])) if values[n] else "" for n in names)])
    body += [[str(g), *(ci_cell(*mean_ci(agg[n][g])) if g in agg.get(n, {}) else "" for n in names)] for g in gens]
    return markdown_table(["generation", *names], body)


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
    from collapse import plots

    constant = constant_metrics([row for row in rows if row["metric"] in shown])
    panels: dict[str, list[str]] = {}
    for n in shown:
        if n not in constant:
            panels.setdefault(n if analytic else panel(n), []).append(n)
    title = declared()[key].title if key in declared() else "Metrics"
    lines = [f"## {title}", "", table(rows, shown, reference), ""]
    if panels:
        log_y = {n for n in shown if analytic and plots.axis(n).kind == "ratio"}  # shrink by orders of magnitude
        figure = plots.metric_curves(rows, panels, store.path / "figures" / f"{key}.png", reference_values(reference),
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


def _rep_arrays(store: RunDir, name: str) -> dict[int, list[np.ndarray]]:
    """{generation: [rep_NN/<name>.npy per replicate, in order]} for the finished generations that have the file."""
    out = {}
    for g in store.finished_generations():
        paths = [p for r in store.replicates(g) if (p := store.rep(g, r) / f"{name}.npy").exists()]
        if paths:
            out[g] = [load_array(p) for p in paths]
    return out


def _interval_note(cfg: dict) -> str:
    """What the replicate interval varies over (docs/metrics.md)."""
    if cfg.get("data", {}).get("_option") == "grammar":
        return ("Each replicate draws its own human data from the truth, so the interval includes the sampling "
                "noise of the human data as well as that of training, sampling and scoring.")
    return ("The replicates share one human corpus and its split (fixed by the seed), so the interval covers "
            "training, sampling and scoring randomness, not the draw of the human data; seeds vary the split.")


def _human_arrays(store: RunDir, name: str) -> list[np.ndarray]:
    """`human/rep_NN/<name>.npy` of every replicate that has its own human data, else `[human/<name>.npy]`
    (or [] if absent)."""
    own = [store.human(name, r) for r in store.human_replicates()]
    paths = [p for p in own if p.exists()] or [p for p in [store.human(name)] if p.exists()]
    return [load_array(p) for p in paths]


HISTOGRAM_PANELS = 6


def _histogram_generations(arrays: dict[int, list]) -> dict[int, list]:
    """The generations a per-sequence histogram shows: all up to six, else six log-spaced from the first to the
    last (`shown_generations`; of ten: 0, 1, 2, 3, 5, 9, the panels of Shumailov et al.'s Fig. 1)."""
    return {g: arrays[g] for g in shown_generations(sorted(arrays), HISTOGRAM_PANELS)}


def _distribution_figures(store: RunDir, seq_len: int) -> list[str]:
    """Per-sequence histograms, rank-frequency curves and bucket masses; markdown image lines."""
    from collapse import plots
    from collapse.metrics.tails import BUCKETS, bucket_mass

    figures = store.path / "figures"
    made = []
    ppl = _histogram_generations(_rep_arrays(store, "ppl_gen0"))
    if ppl:
        test0 = _rep_arrays(store, "ppl_test").get(0)
        made.append(plots.histograms({g: np.concatenate(x) for g, x in ppl.items()}, figures / "ppl_gen0_hist.png",
                                     "per-sequence perplexity of the samples under generation 0 (log scale)",
                                     None if test0 is None else ("gen 0 on human test", np.concatenate(test0)),
                                     log_x=True))
    true_lp, human_lp = _histogram_generations(_rep_arrays(store, "true_logprob")), _human_arrays(store, "true_logprob")
    if true_lp and human_lp:
        made.append(plots.histograms({g: -np.concatenate(x) / seq_len for g, x in true_lp.items()},
                                     figures / "true_nll_hist.png", "true NLL per token of each sample (nats)",
                                     ("human train", -np.concatenate(human_lp) / seq_len)))
    counts, human_counts = _rep_arrays(store, "token_counts"), _human_arrays(store, "token_counts")
    buckets = _human_arrays(store, "buckets")  # per human dataset; replicate r uses r's, or the shared one
    if counts and human_counts and len(buckets) == len(human_counts):
        human_V = np.sum(human_counts, axis=0)
        truth = _human_arrays(store, "unigram_true")
        last_seen = load_array(store.last_seen) if store.last_seen.exists() else None
        pooled = {g: np.sum(c, axis=0) for g, c in _histogram_generations(counts).items()}
        made.append(plots.rank_frequency(pooled, human_V, figures / "rank_frequency.png", truth[0] if truth else None,
                                         last_seen))
        share = lambda c: np.mean([bucket_mass(c_V, buckets[r % len(buckets)]) for r, c_V in enumerate(c)], axis=0)  # noqa: E731
        masses = {"human": share(human_counts)} | {f"gen {g}": share(c) for g, c in counts.items()}
        made.append(plots.bucket_bars(masses, BUCKETS, figures / "bucket_mass.png"))
    return [f"![{p.stem}]({p.relative_to(store.path)})" for p in made]


# What the curation scores are, by `curate` option (docs/curation.md).
_CURATION_SCORES = {"verifier": "verifier score per generated token (truth: log-probability, nats)",
                    "perplexity": "perplexity per generated token", "correct": "true log-probability per generated "
                    "token (nats): candidates as drawn, kept as corrected"}


def _curation_figure(store: RunDir, option: str) -> list[str]:
    """`figures/curation_scores.png`: per generation the scores of every candidate and of the rows kept;
    markdown image lines ([] without curation arrays)."""
    from collapse import plots

    before, after = _rep_arrays(store, "curate_scores"), _rep_arrays(store, "curate_scores_kept")
    if not before:
        return []
    before = _histogram_generations(before)
    figure = plots.before_after({g: np.concatenate(x) for g, x in before.items()},
                                {g: np.concatenate(x) for g, x in after.items() if g in before},
                                store.path / "figures" / "curation_scores.png",
                                _CURATION_SCORES.get(option, "curation score"))
    return ["Scores of the candidates drawn (filled) and of the rows kept (outlined), replicates pooled (at most "
            "six generations, log-spaced):", "",
            f"![curation_scores]({figure.relative_to(store.path)})", ""]


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
    from collapse import plots

    records = {}
    for g in store.generations():
        path = store.gen(g) / "provenance.json"
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
    figure = plots.provenance(shares, depths, store.path / "figures" / "provenance.png")
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
                lines += _curation_figure(store, cfg.get("curate", {}).get("_option", ""))
    if rows and not analytic:
        # tokens scored per sequence: in continuation mode, the continuation after the human prompt
        sample = cfg.get("sample", {})
        seq_len = cfg["data"]["seq_len"] - (sample["prompt_len"] if sample.get("mode") == "continuation" else 0) \
            if cfg else 1
        lines += ["## Distributions", "", "Per-sequence histograms (replicates pooled; at most six generations, "
                  "log-spaced: 0, 1, 2, 3, 5, 9 of ten), rank-frequency curves (the same generations) and the share of "
                  "tokens per human frequency bucket (mean over replicates).", "",
                  *_distribution_figures(store, seq_len), ""]
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
