"""Power and null of the membership tests without a watermark (docs/membership.md), on the tests' grammar: one
tiny study per share s of generation 1's training set that is generation 0's released samples (regime=mix,
human_fraction = 1 - s; at s = 0 generation 1 never read them: the null), R replicates each.

    membership   V = 64, 128 rows of 16 tokens, 32 epochs (a model that memorises), 128 rows withheld:
                 generation 1's membership_log10p (its parent's released against withheld rows)
    palimpsest   V = 256, one pass over 1024 rows in batches of 8 at a constant learning rate of 1e-2:
                 generation 1 (a student of generation 0's samples) against generation 0's training order,
                 less an independent model (seed 1's generation 0); generation 0 itself is the ceiling
    null         generation 0's membership rows (it drew both halves alike; the same model in every arm, so
                 counted once), generation 1's at share 0, and the independent model against generation 0's
                 order without a reference

    uv run python experiments/audit_power.py [--replicates 16]
        → results/audit/membership_power.csv (every p-value), membership_power.png, null_p_values.png
    uv run python experiments/audit_power.py --from-csv     # the figures and tables again from the csv
"""

import argparse
import contextlib
import csv
import io
import tempfile
from pathlib import Path

import numpy as np

from _common import RESULTS, figure, save
from collapse import audit
from collapse.config import Config, SampleConfig, TrainConfig
from collapse.data import GrammarConfig
from collapse.families import TransformerConfig
from collapse.regimes import MixConfig
from collapse.run import loop

SHARES = [0.0, 0.05, 0.2, 1.0]
MODEL = TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64, context=32)  # the tests' tiny model


def config(V: int, n: int, train: TrainConfig, R: int, s: float, seed: int = 0, generations: int = 2, **sample):
    return Config(data=GrammarConfig(vocab_size=V, n_states=4, n_train=n, n_valid=16, n_test=32, seq_len=16),
                  model=MODEL, train=train, sample=SampleConfig(batch_size=256, **sample),
                  regime=MixConfig(human_fraction=1.0 - s), generations=generations, replicates=R, seed=seed,
                  compilation_cache="")


def audit_log10p(argv: list[str]) -> list[float]:
    """log10 p of each (generation, replicate) line `collapse-audit` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        audit.main(argv)
    return [float(line.split("log10 p")[1].split()[0]) for line in out.getvalue().splitlines()
            if line.startswith("generation") and "log10 p" in line]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicates", type=int, default=16)
    ap.add_argument("--from-csv", action="store_true", help="redraw from results/audit/membership_power.csv")
    args = ap.parse_args()
    out = RESULTS / "audit"
    if args.from_csv:
        with open(out / "membership_power.csv") as f:
            rows = [(t, float(s), int(g), int(r), float(v)) for t, s, g, r, v in list(csv.reader(f))[1:]]
    else:
        rows = compute(args.replicates)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "membership_power.csv", "w", newline="") as f:
            csv.writer(f).writerows([("test", "share", "generation", "replicate", "log10_p"), *rows])
        print(f"wrote {out / 'membership_power.csv'}")
    report(rows)


def compute(R: int) -> list[tuple]:
    """Every test's log10 p: (test, share, generation, replicate, log10 p)."""
    tmp, rows = Path(tempfile.mkdtemp()), []
    remember = TrainConfig(batch_size=16, epochs=32, log_every=100)
    one_pass = TrainConfig(batch_size=8, epochs=1, lr=1e-2, min_lr_ratio=1.0, log_every=100)
    reference = tmp / "reference"
    loop.run(config(256, 1024, one_pass, R, 0.0, seed=1, generations=1), reference)
    for s in SHARES:
        store = loop.run(config(64, 128, remember, R, s, withheld=128), tmp / f"membership_{s}")
        rows += [("membership", s, row["generation"], row["replicate"], row["value"]) for row in store.read_metrics()
                 if row["metric"] == "membership_log10p"]
        run = str(tmp / f"palimpsest_{s}")
        loop.run(config(256, 1024, one_pass, R, s), run)
        for g in (0, 1):
            p = audit_log10p(["palimpsest", run, "--source", run, "--reference", str(reference), "--generation", str(g)])
            rows += [("palimpsest", s, g, r, v) for r, v in enumerate(p)]
        if s == 0:  # the independent model against generation 0's order, without a reference: a null
            p = audit_log10p(["palimpsest", str(reference), "--source", run])
            rows += [("palimpsest_independent", s, 0, r, v) for r, v in enumerate(p)]
    return rows


def report(rows: list[tuple]) -> None:
    R = len({r for t, s, g, r, _ in rows if t == "membership" and g == 1 and s == SHARES[0]})

    def values(test, g, s=None):
        return np.array([v for t, share, gen, _, v in rows if t == test and gen == g and (s is None or share == s)])

    print(f"{'test':<12} {'share':>6}  power at p < 0.01  median log10 p   (R = {R})")
    fig, ax = figure(1, 2)
    for test, color in (("membership", "C0"), ("palimpsest", "C1")):
        power = [(values(test, 1, s) < -2).mean() for s in SHARES]
        median = [np.median(values(test, 1, s)) for s in SHARES]
        for s, pw, md in zip(SHARES, power, median):
            print(f"{test:<12} {s:>6}  {pw:>17.2f}  {md:>14.2f}")
        ax[0].plot(range(len(SHARES)), power, "o-", color=color, label=test)
        ax[1].plot(range(len(SHARES)), median, "o-", color=color, label=test)
    ceiling = values("palimpsest", 0)
    print(f"palimpsest ceiling (generation 0, the source itself): power {(ceiling < -2).mean():.2f}, "
          f"median log10 p {np.median(ceiling):.2f}")
    ax[0].axhline(0.01, color="0.5", lw=0.8, ls=":")
    ax[0].set(ylabel="power at p < 0.01 (generation 1)", ylim=(-0.02, 1.02), title=f"{R} replicates per share")
    ax[1].set(ylabel="median log10 p (generation 1)")
    for a in ax:
        a.set_xticks(range(len(SHARES)), [f"{s:.0%}" for s in SHARES])
        a.set_xlabel("generation 0's samples in generation 1's training set")
        a.legend(fontsize=7)
    save(fig, "audit/membership_power")
    fig, ax = figure(1, 2)
    nulls = {"membership (generation 0)": 10 ** values("membership", 0, SHARES[0]),
             "membership (generation 1, share 0)": 10 ** values("membership", 1, 0.0),
             "palimpsest (independent model)": 10 ** values("palimpsest_independent", 0),
             "palimpsest (generation 1, share 0)": 10 ** values("palimpsest", 1, 0.0)}
    from scipy import stats

    for a, names in zip(ax, (list(nulls)[:2], list(nulls)[2:])):
        for name in names:
            a.hist(nulls[name], bins=10, range=(0, 1), histtype="step", label=f"{name}: n = {len(nulls[name])}")
            print(f"null {name}: n {len(nulls[name])}, KS p {stats.kstest(nulls[name], 'uniform').pvalue:.3f}, "
                  f"share p < 0.05: {(nulls[name] < 0.05).mean():.3f}")
        a.set(xlabel="p-value", ylabel="count")
        a.legend(fontsize=6)
    save(fig, "audit/null_p_values")


if __name__ == "__main__":
    main()
