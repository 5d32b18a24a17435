"""Per-run report: aggregate `metrics.jsonl` across replicates, print one line per generation,
write `report.md` with the per-generation table and `figures/*.png`. Tolerates runs still in progress."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from collapse.config import DataError
from collapse.store import PHASES, RunDir, atomic_write, load_json

log = logging.getLogger("collapse")

# Two-sided 95 % Student-t quantiles by degrees of freedom; between entries, interpolate in 1/df.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}

SHOWN = ("ppl_human_test", "kl_true", "true_nll_samples", "distinct_1", "distinct_2", "unigram_entropy")


def t975(df: int) -> float:
    """Two-sided 95 % quantile of Student's t with `df` degrees of freedom (exact at the table's entries)."""
    if df in _T975:
        return _T975[df]
    keys = sorted(_T975)
    if df > keys[-1]:
        lo, hi, t_lo, t_hi = keys[-1], math.inf, _T975[keys[-1]], 1.959964
    else:
        lo = max(k for k in keys if k < df)
        hi = min(k for k in keys if k > df)
        t_lo, t_hi = _T975[lo], _T975[hi]
    w = (1 / lo - 1 / df) / (1 / lo - (0 if hi == math.inf else 1 / hi))
    return t_lo + w * (t_hi - t_lo)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % t-interval (nan with one value)."""
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), t975(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))


def aggregate(rows: list[dict]) -> dict[str, dict[int, list[float]]]:
    """{metric: {generation: [value per replicate]}}."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        out[row["metric"]][row["generation"]].append(row["value"])
    return out


def sort_key(name: str) -> tuple:
    """Headline metrics first, in `SHOWN` order, then the rest alphabetically."""
    return (name not in SHOWN, SHOWN.index(name) if name in SHOWN else 0, name)


def print_generation(g: int, rows: list[dict], seconds: float) -> None:
    agg = aggregate(rows)
    parts = [f"{name} {mean_ci(agg[name][g])[0]:.4g}" for name in SHOWN if g in agg.get(name, {})]
    log.info("gen %d | %s | %.1fs", g, " | ".join(parts), seconds)


def fmt(mean: float, half: float) -> str:
    return f"{mean:.4g}" if math.isnan(half) else f"{mean:.4g} ± {half:.2g}"


def table(rows: list[dict], names: list[str], reference: dict[str, float] | None = None) -> str:
    """Markdown table: one line per generation, mean ± 95 % CI across replicates; first the human reference."""
    agg = aggregate(rows)
    gens = sorted({row["generation"] for row in rows})
    lines = ["| generation | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    if reference:
        lines.append("| human | " + " | ".join(f"{reference[n]:.4g}" if n in reference else "" for n in names) + " |")
    for g in gens:
        cells = [fmt(*mean_ci(agg[n][g])) if g in agg.get(n, {}) else "" for n in names]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _marker(store: RunDir, g: int, phase: str) -> dict:
    try:
        return load_json(store.marker(g, phase))
    except DataError:  # a damaged marker must not stop the report of everything else
        return {}


def write(store: RunDir) -> Path:
    """(Re)write `report.md` and `figures/` from what the run directory holds now."""
    from collapse import plots

    rows = store.read_metrics()
    names = sorted({row["metric"] for row in rows}, key=sort_key)
    cfg = load_json(store.path / "config.json") if (store.path / "config.json").exists() else {}
    lines = [f"# collapse run `{store.path.name}`", ""]
    if cfg:
        lines += [f"regime **{cfg['regime']['_option']}**, data **{cfg['data']['_option']}**, "
                  f"{cfg['replicates']} replicate(s), seed {cfg['seed']}, "
                  f"{len(store.finished_generations())}/{cfg['generations']} generations complete.", ""]
    reference = load_json(store.human_reference) if store.human_reference.exists() else None
    lines += ["Mean ± 95 % t-interval across replicates. The `human` row measures the human train split (and, for",
              "the grammar, the true language as the model).", "", table(rows, names, reference), ""]
    if rows:
        figure = plots.metric_curves(rows, names, store.path / "figures" / "metrics.png")
        lines += [f"![metrics]({figure.relative_to(store.path)})", ""]
    lines += ["## Phases", "", "| generation | " + " | ".join(PHASES) + " | device |", "|---" * 5 + "|"]
    for gen_dir in sorted(store.path.glob("gen_[0-9][0-9][0-9]")):
        g = int(gen_dir.name[4:])
        info = {p: _marker(store, g, p) for p in PHASES if store.is_done(g, p)}
        cells = [f"{info[p].get('seconds', float('nan')):.1f}s" if p in info else "—" for p in PHASES]
        device = next((i.get("device", "") for i in info.values()), "")
        lines.append(f"| {g} | " + " | ".join(cells) + f" | {device} |")
    path = store.path / "report.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path
