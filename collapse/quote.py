"""Numbers in a results README that come from its summary.csv: quoted tables, rewritten by `collapse-report`.

A README quotes a comparison with a block

    <!-- quote: kl_true at 0,1,3,7 -->
    (the table, written by `collapse-report --quote README.md`)
    <!-- /quote -->

whose spec is one of
    `METRIC at G1,G2,...`          one metric, a column per generation
    `M1, M2, ... at G`             several metrics, a column each, at one generation
    `METRIC below X over G1-G2`    the share of (unit, generation) cells below X, generations G1..G2
optionally preceded by the comparison's folder relative to the README (`<!-- quote all/: ... -->`; default:
the README's own folder, which holds summary.csv and report.json) and followed by `; rows LABEL | LABEL`
to show only those conditions (labels as the comparison gives them), in that order. Rows are conditions,
cells mean ± 95 % t-interval over the condition's units (as comparison.md), so a quoted number is the
number `collapse-report --all` writes, and `--quote` rewrites every block after the data change.

A number in a sentence is quoted inline, `<!--q METRIC at G for LABEL-->0.642 ± 0.029<!--/q-->` (the mean
± 95 % of one condition; `METRIC mean at G for LABEL`: the mean alone), with the same optional folder
(`<!--q all/ kl_true at 7 for soft-->`), so prose numbers are rewritten with the tables.
"""

from __future__ import annotations

import re
from pathlib import Path

from collapse import summary
from collapse.pooling import Comparison, load_options
from collapse.errors import DataError
from collapse.stats import mean_ci
from collapse.files import atomic_write
from collapse.tables import ci_cell, markdown_table

BLOCK = re.compile(r"<!-- quote(?: (?P<src>[^:]+?))?: (?P<spec>.+?) -->\n(?P<body>.*?)<!-- /quote -->", re.S)
INLINE = re.compile(r"<!--q (?:(?P<src>\S+/) )?(?P<spec>[^>]+?)-->(?P<body>[^\n]*?)<!--/q-->")
_ONE = re.compile(r"(?P<metric>\S+)(?P<mean> mean)? at (?P<g>\d+) for (?P<label>.+)$")
_BELOW = re.compile(r"(?P<metric>\S+) below (?P<x>\S+) over (?P<g0>\d+)-(?P<g1>\d+)$")
_AT = re.compile(r"(?P<metrics>.+?) at (?P<gens>[\d, ]+)$")


def _comparison(folder: Path) -> Comparison:
    rows, columns = summary.read_csv(folder / "summary.csv")
    return Comparison(rows, columns, load_options(folder / "report.json"))


def _rows(comp, only: list[str], where: str) -> list[str]:
    """The conditions to show: those labelled `only`, in that order, or all that have data."""
    by_label = {comp.labels[key]: key for key in comp.aggs}
    missing = [label for label in only if label not in by_label]
    if missing:
        raise DataError(where, f"no condition labelled {missing[0]!r}; the labels are: {'; '.join(by_label)}")
    return [by_label[label] for label in only] if only else list(comp.aggs)


def _cell(comp, key: str, name: str, g: int) -> str:
    """mean ± 95 % of a condition's units, or "—" where it has no such value (a curation metric of none)."""
    values = comp.aggs[key].get(name, {}).get(g)
    return "—" if values is None else ci_cell(*mean_ci(values))


def table(comp, spec: str, where: str = "quote") -> str:
    """The markdown table of one quote spec (module docstring) from a `pooling.Comparison`."""
    spec, _, only = spec.partition("; rows ")
    keys = _rows(comp, [s.strip() for s in only.split("|")] if only else [], where)
    if m := _BELOW.match(spec.strip()):
        name, x, gens = m["metric"], float(m["x"]), range(int(m["g0"]), int(m["g1"]) + 1)
        body = []
        for key in keys:
            cells = [v for g in gens for v in comp.aggs[key].get(name, {}).get(g, [])]
            if not cells:
                raise DataError(where, f"{comp.labels[key]!r} has no {name} at generations {m['g0']}-{m['g1']}")
            below = sum(v < x for v in cells)
            body.append([comp.labels[key], f"{below} of {len(cells)} ({100 * below / len(cells):.0f} %)"])
        return markdown_table(["condition", f"{name} < {m['x']}, generations {m['g0']}-{m['g1']}"], body)
    m = _AT.match(spec.strip())
    if not m:
        raise DataError(where, f"not a quote spec: {spec!r} (METRIC at G,G,... | M1, M2 at G | "
                               "METRIC below X over G-G)")
    names, gens = [s.strip() for s in m["metrics"].split(",")], [int(g) for g in m["gens"].split(",")]
    unknown = [n for n in names if n not in comp.names]
    if unknown:
        raise DataError(where, f"no metric {unknown[0]!r} in this comparison")
    if len(names) == 1:
        header = ["condition", *(f"gen {g}" for g in gens)]
        body = [[comp.labels[k], *(_cell(comp, k, names[0], g) for g in gens)] for k in keys]
        return f"{names[0]}:\n\n" + markdown_table(header, body)
    if len(gens) != 1:
        raise DataError(where, f"several metrics are quoted at one generation, got {m['gens']!r}")
    body = [[comp.labels[k], *(_cell(comp, k, n, gens[0]) for n in names)] for k in keys]
    return f"generation {gens[0]}:\n\n" + markdown_table(["condition", *names], body)


def number(comp, spec: str, where: str = "quote") -> str:
    """The text of one inline quote (`METRIC [mean] at G for LABEL`): mean ± 95 %, or the mean alone."""
    m = _ONE.match(spec.strip())
    if not m:
        raise DataError(where, f"not an inline quote spec: {spec!r} (METRIC [mean] at G for LABEL)")
    key = _rows(comp, [m["label"].strip()], where)[0]
    if m["metric"] not in comp.names:
        raise DataError(where, f"no metric {m['metric']!r} in this comparison")
    values = comp.aggs[key].get(m["metric"], {}).get(int(m["g"]))
    if values is None:
        raise DataError(where, f"{m['label'].strip()!r} has no {m['metric']} at generation {m['g']}")
    mean, half = mean_ci(values)
    return f"{mean:.4g}" if m["mean"] else ci_cell(mean, half)


def rewrite(readme: Path) -> bool:
    """Rewrite every quote block and inline quote of `readme` from its comparisons' files; True if the text
    changed."""
    text = readme.read_text()
    cache: dict[Path, object] = {}

    def comparison(src: str | None, where: str):
        folder = (readme.parent / (src or ".")).resolve()
        if not (folder / "summary.csv").exists():
            raise DataError(where, f"no summary.csv in {folder}")
        if folder not in cache:
            cache[folder] = _comparison(folder)
        return cache[folder]

    def fill(m: re.Match) -> str:
        where = f"{readme}: quote {m['spec']!r}"
        src = f" {m['src']}" if m["src"] else ""
        return (f"<!-- quote{src}: {m['spec']} -->\n{table(comparison(m['src'], where), m['spec'], where)}\n"
                "<!-- /quote -->")

    def fill_inline(m: re.Match) -> str:
        where = f"{readme}: quote {m['spec']!r}"
        src = f"{m['src']} " if m["src"] else ""
        return f"<!--q {src}{m['spec']}-->{number(comparison(m['src'], where), m['spec'], where)}<!--/q-->"

    new = INLINE.sub(fill_inline, BLOCK.sub(fill, text))
    if new != text:
        atomic_write(readme, new.encode())
    return new != text


def readmes(root: Path) -> list[Path]:
    """The READMEs below `root` that quote a comparison."""
    return sorted(p for p in root.rglob("README.md") if BLOCK.search(text := p.read_text()) or INLINE.search(text))
