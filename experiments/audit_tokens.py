"""Radioactivity against the evidence scored (Sander et al. 2024's second axis): the open-model test of the
`radioactivity` preset's students (generations 1-3) on the first N rows of generation 0's watermarked corpus,
N = 8 ... 1024, with and without their filter (only windows of the student's own training set), for every
share rho of watermarked text and seed. Reads the runs of `bash experiments/run_all.sh cpu runs radioactivity`.

    uv run python experiments/audit_tokens.py runs/radioactivity/cpu
        → results/audit/radioactivity_tokens.csv (every test), radioactivity_tokens.png
"""

import argparse
import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np

from _common import RESULTS, figure, save
from collapse import audit

ROWS = [8, 32, 128, 512, 1024]


def tests(argv: list[str]) -> list[tuple[int, float, float]]:
    """(scored tokens, z, log10 p) of each (generation, replicate) line `collapse-audit read` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        audit.main(argv)
    return [(int(line.split("scored")[1].split()[0]), float(line.split(" z ")[1].split()[0]),
             float(line.split("log10 p")[1].split()[0])) for line in out.getvalue().splitlines()
            if line.startswith("generation")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", help="the radioactivity preset's run folder (its jobs 0, 1, ...)")
    runs = sorted(p for p in Path(ap.parse_args().runs).iterdir() if (p / "config.json").exists())
    rows = []  # (rho, seed, generation, filter, N rows, scored tokens, z, log10 p)
    for run in runs:
        cfg = json.loads((run / "config.json").read_text())
        rho, seed = round(1 - cfg["regime"]["human_fraction"], 4), cfg["seed"]
        for g in (1, 2, 3):
            for n in ROWS:
                for mode in ("none", "training"):
                    argv = ["read", str(run), "--marked", str(run), "--generation", str(g), "--rows", str(n)]
                    for scored, z, lp in tests(argv + (["--filter", "training"] if mode == "training" else [])):
                        rows.append((rho, seed, g, mode, n, scored, z, lp))
        print(f"{run}: rho {rho}, seed {seed} read")
    out = RESULTS / "audit"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "radioactivity_tokens.csv", "w", newline="") as f:
        csv.writer(f).writerows([("rho", "seed", "generation", "filter", "rows", "scored", "z", "log10_p"), *rows])
    fig, ax = figure(1, 2)
    rhos = sorted({r[0] for r in rows})
    for a, mode in zip(ax, ("none", "training")):
        for i, rho in enumerate(rhos):
            for g, style in ((1, "o-"), (2, "s--")):
                cells = [[r for r in rows if r[0] == rho and r[2] == g and r[3] == mode and r[4] == n] for n in ROWS]
                tokens = [np.mean([r[5] for r in c]) for c in cells]
                lp = [np.mean([r[7] for r in c]) for c in cells]
                a.plot(tokens, lp, style, color=f"C{i}", ms=3, label=f"rho {rho:g}, generation {g}")
                if g == 1:
                    print(f"filter {mode:<8} rho {rho:<5g} generation 1: " + ", ".join(
                        f"{t:.0f} tokens {p:.1f}" for t, p in zip(tokens, lp)))
        a.axhline(-5, color="0.5", lw=0.8, ls=":")
        a.set(xscale="log", xlabel="tokens scored (mean over seeds and replicates)", ylabel="mean log10 p",
              title=f"open model, filter: {mode}")
        a.legend(fontsize=6)
    save(fig, "audit/radioactivity_tokens")


if __name__ == "__main__":
    main()
