"""`summary.csv`: the metric rows of a set of runs with what a comparison needs, so that `collapse-report` can
rebuild `comparison.md` and its figures from the file alone (`collapse-report --all`), without the run
directories. One row per run × finished generation × replicate × metric:

    run                    the run directory, relative to the runs' common folder (`targets/3`)
    <config columns>       the config values that differ between the runs, as `compare` labels them
                           (`regime`, `regime.human_fraction`, `train.target`; empty: the run has no such key)
    seed
    shared_human_data      true where a seed's replicates share one corpus split (text, hf): `pooling.pooled_rows`
    planned_generations    the run's `generations`
    finished_generations   how many generations are marked done (score marker, or generations.done)
    incomplete             why the run has fewer: an error from its log, the first missing marker (empty: complete)
    generation, replicate, metric, value    the metric row (value empty: undefined)

A run with no finished generation has one row with empty generation, replicate, metric and value.

The aggregated form (`collapse-report --aggregate`, for studies with many replicates, such as the analytic
families' hundreds) has one row per run × generation × metric, `n, mean, sd` over the run's replicates in place
of `replicate, value`: the comparison pools these exactly (`stats.Moments`), so its tables and bands are those of
the full form, in a file a hundred times smaller.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from collapse.config import ANALYTIC_MODELS, LATER_GROUPS, RESUMABLE_KEYS, flatten, from_dict, to_dict
from collapse.errors import ConfigError, DataError
from collapse.stats import Moments
from collapse.files import atomic_write
from collapse.store import PHASES, RunDir

RUN_FIELDS = ("seed", "shared_human_data", "planned_generations", "finished_generations", "incomplete")
ROW_FIELDS = ("generation", "replicate", "metric", "value")
MOMENT_FIELDS = ("generation", "metric", "n", "mean", "sd")  # the aggregated form

# Never a config column: the seed (pooled) and the keys that change no result (config.RESUMABLE_KEYS).
IGNORED = ("seed", *RESUMABLE_KEYS)


def varying(configs: dict) -> tuple[list[str], dict]:
    """The config columns: the config values that differ between the runs of `configs` ({run: config.json}),
    `regime._option` named `regime`; and {run: {column: value as text}}, without the keys a run's config lacks
    (the fields of another regime) or leaves unset (None). A group added later and absent from a config.json is
    its default option (`LATER_GROUPS`: `curate=none`)."""
    flat = {run: _flat(cfg, every_key=False) for run, cfg in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    keys = [k for k in keys if k not in IGNORED and len({repr(f.get(k)) for f in flat.values()}) > 1]
    full = {run: _flat(cfg) for run, cfg in configs.items()}  # with the keys config.json leaves out at defaults
    option = lambda f, k: f.get(k.split(".")[0] + "._option")  # noqa: E731  (the option of a key's group)
    shown = {(option(full[run], k), k) for run, f in flat.items() for k in keys if f.get(k) is not None}

    def value(run, k):  # a key left out at its default reads as that default beside runs of its option that set it
        f = flat[run] if flat[run].get(k) is not None or (option(full[run], k), k) not in shown else full[run]
        return f.get(k)

    values = {run: {k.replace("._option", ""): str(value(run, k)) for k in keys if value(run, k) is not None}
              for run in flat}  # None: unset
    return [k.replace("._option", "") for k in keys], values


def select(configs: dict, where: dict[str, str]) -> dict:
    """The runs of `configs` ({run: config.json}) whose config values, as text, are those of `where`
    ({key as the config columns spell it: value}, e.g. {"sample.temperature": "0.8"})."""
    texts = {run: {k.replace("._option", ""): str(v) for k, v in _flat(cfg).items()} for run, cfg in configs.items()}
    for key in where:
        if not any(key in text for text in texts.values()):
            raise ConfigError("where", f"{key!r} is not a config key of these runs")
    chosen = {run: cfg for run, cfg in configs.items() if all(texts[run].get(k) == v for k, v in where.items())}
    if configs and not chosen:
        raise ConfigError("where", f"{where} selects none of the {len(configs)} runs")
    return chosen


def _flat(cfg: dict, every_key: bool = True) -> dict:
    """A config.json flattened (`regime._option`, `regime.size`), a group added later at its default option; with
    `every_key`, the keys it leaves out at their defaults too (as `config.to_dict`)."""
    return {**{f"{group}._option": option for group, option in LATER_GROUPS.items()},
            **flatten(_through_schemas(cfg, every_key))}


def _through_schemas(cfg: dict, every_key: bool) -> dict:
    """A config.json with the keys added since it was written at their defaults (as a resume reads it), or as
    it is where the schemas cannot read it."""
    try:
        return to_dict(from_dict(cfg), every_key)
    except (KeyError, TypeError, AttributeError, ValueError):
        return cfg


def shared_human_data(cfg: dict) -> bool:
    """Whether a run's replicates share their human data (one text corpus split once per seed), or each drew
    its own (the grammar and the analytic families)."""
    return cfg.get("data", {}).get("_option") in ("text", "hf") and cfg["model"]["_option"] not in ANALYTIC_MODELS


def run_names(runs: list[Path]) -> dict[Path, str]:
    """{run: its path relative to the runs' common folder} (a lone run: its own name), stable across machines."""
    if len(runs) == 1:
        return {runs[0]: runs[0].name}
    root = Path(os.path.commonpath([str(r) for r in runs]))
    return {run: str(run.relative_to(root)) if run != root else run.name for run in runs}


def last_error(path: Path) -> str:
    """The last ERROR line of the run's job logs (Hydra writes `<run>/<job>.log`), without its prefix; ""."""
    error = ""
    for log in sorted(path.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "[ERROR]" in line:
                error = line.split("] - ", 1)[-1].strip()
    return error[:300]


def why_incomplete(store: RunDir, cfg: dict, finished: list[int]) -> str:
    """Why a run has finished fewer generations than planned: its logged error if any, and the first
    generation without its markers (a run still in progress reads the same)."""
    parts = [f"error: {e}"] if (e := last_error(store.path)) else []
    if cfg["model"]["_option"] in ANALYTIC_MODELS:
        parts.append("no generations.done marker")
    else:
        g = next(g for g in range(cfg["generations"]) if g not in finished)
        done = [p for p in PHASES if store.is_done(g, p)]
        missing = next(p for p in PHASES if p not in done)
        parts.append(f"generation {g}: {', '.join(done)} done, no {missing} marker" if done
                     else f"generation {g}: no marker")
    return "; ".join(parts)


def run_rows(store: RunDir, cfg: dict, name: str, values: dict[str, str]) -> list[dict]:
    """The summary rows of one run: its metric rows of finished generations, each with the run's fields."""
    try:
        finished = store.finished_generations()
        reason = "" if len(finished) >= cfg["generations"] else why_incomplete(store, cfg, finished)
        rows = [r for r in store.read_metrics() if r["generation"] in set(finished)]
        if cfg.get("labs"):
            rows = between_rows(rows, len(cfg["labs"]))
    except DataError as e:
        finished, reason, rows = [], str(e), []
    run = {"run": name, **values, "seed": cfg["seed"], "shared_human_data": shared_human_data(cfg),
           "planned_generations": cfg["generations"], "finished_generations": len(finished), "incomplete": reason}
    return [{**run, **{k: r[k] for k in ROW_FIELDS}} for r in rows] or [{**run, **dict.fromkeys(ROW_FIELDS)}]


def between_rows(rows: list[dict], labs: int) -> list[dict]:
    """An ecosystem's own rows of its metrics.jsonl (the labs' are their runs'): the whole's, and every pair's
    with the pair in the metric's name (`js_pair[a|b]`) where there are several pairs."""
    from collapse.metrics.ecosystem import ALL

    named = lambda r: r if r["lab"] == ALL or labs == 2 else {**r, "metric": f"{r['metric']}[{r['lab']}]"}  # noqa: E731
    return [named(r) for r in rows if r["lab"] == ALL or "|" in r["lab"]]


def collect(configs: dict[Path, dict]) -> tuple[list[dict], list[str]]:
    """The summary rows of the runs of `configs` ({run directory: config.json}) and the config columns."""
    (columns, values), names = varying(configs), run_names(list(configs))
    rows = [row for run, cfg in configs.items()
            for row in run_rows(RunDir(run), cfg, names[run], {c: values[run].get(c, "") for c in columns})]
    return rows, columns


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    return repr(float(v)) if isinstance(v, float) else str(v)


def moment_rows(rows: list[dict]) -> list[dict]:
    """The aggregated form of summary rows: one row per run × generation × metric with the size, mean and
    standard deviation of its replicates' defined values (empty where there are too few)."""
    cells: dict[tuple, tuple[dict, list]] = {}
    for row in rows:
        cells.setdefault((row["run"], row["generation"], row["metric"]), (row, []))[1].append(row["value"])
    out = []
    for (_, generation, metric), (first, values) in cells.items():
        m = Moments.of([v for v in values if v is not None])
        out.append({**{k: v for k, v in first.items() if k not in ROW_FIELDS}, "generation": generation,
                    "metric": metric, "n": m.n if metric is not None else None,
                    "mean": m.mean if m.n else None, "sd": m.sd if m.n > 1 else None})
    return out


def write_csv(path: Path, rows: list[dict], columns: list[str], aggregated: bool = False) -> Path:
    """Write `rows` with the config `columns` (the one writer of summary.csv), one row per replicate or, with
    `aggregated`, per run × generation × metric (`moment_rows`); floats as `repr`, so they read back exactly."""
    fields = ("run", *columns, *RUN_FIELDS, *(MOMENT_FIELDS if aggregated else ROW_FIELDS))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([[_cell(row[k]) for k in fields] for row in (moment_rows(rows) if aggregated else rows)])
    atomic_write(path, buf.getvalue().encode())
    return path


def read_csv(path: Path) -> tuple[list[dict], list[str]]:
    """The rows and config columns of a summary.csv, typed as `collect` returns them; in the aggregated form
    each row's value is the `Moments` of its replicates (replicate empty)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            raw = list(reader)
    except FileNotFoundError:
        raise DataError(path, "missing") from None
    aggregated = "n" in header and "replicate" not in header
    fixed = {"run", *RUN_FIELDS, *(MOMENT_FIELDS if aggregated else ROW_FIELDS)}
    if not fixed <= set(header):
        raise DataError(path, f"not a summary.csv (columns {', '.join(sorted(fixed - set(header)))} missing)")
    integer = lambda s: int(s) if s != "" else None  # noqa: E731
    number = lambda s: float(s) if s != "" else None  # noqa: E731

    def measured(r: dict) -> dict:
        if not aggregated:
            return {"replicate": integer(r["replicate"]), "value": number(r["value"])}
        n = integer(r["n"])
        return {"replicate": None, "value": Moments.from_sd(n, float(r["mean"]), number(r["sd"]) or 0.0) if n else None}

    rows = [{**{k: v for k, v in r.items() if k not in MOMENT_FIELDS[2:]}, "seed": int(r["seed"]),
             "shared_human_data": r["shared_human_data"] == "true",
             "planned_generations": int(r["planned_generations"]),
             "finished_generations": int(r["finished_generations"]),
             "generation": integer(r["generation"]), "metric": r["metric"] or None, **measured(r)} for r in raw]
    return rows, [c for c in header if c not in fixed]
