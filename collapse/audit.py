"""`collapse-audit`: a third party's tests on run directories: watermarks (docs/watermarks.md), membership tests
without one (docs/membership.md) and the data certificate (docs/run-directory.md).

    collapse-audit detect RUN_DIR [--generation G ...] [--key K --scheme S --context C --gamma F]
        closed model: were the samples of RUN_DIR's generations written with this watermark (default: its own)?
    collapse-audit read SUSPECT_RUN --marked RUN_DIR --marked-generation G [--filter training|ROWS.npy] [...]
        open model: do SUSPECT_RUN's models continue the windows of RUN_DIR's generation G samples (watermarked)
        with green tokens, or high r, more often than chance (only windows in their training set, or in ROWS)?
    collapse-audit membership SUSPECT_RUN --source RUN_DIR --source-generation G [--generation H ...]
        do they give RUN_DIR's released samples of generation G higher log-likelihood than its withheld ones?
    collapse-audit palimpsest SUSPECT_RUN --source RUN_DIR --source-generation G [--reference RUN ...]
        does it rise with the place of generation G's training rows in its one shuffled pass?
    collapse-audit verify RUN_DIR [--certificate FILE]
        recompute the data certificate's roots and digests from the files, print each generation's certified
        share of training rows; exit 1 naming the first file that does not match
    collapse-audit certificate RUN_DIR [--out FILE]
        export the certificate as one JSON file (its "digest" is the value to publish)

The watermark and membership tests print one line per (generation, replicate): the tokens or rows scored, the
statistic, z and log10 p. A bad directory or option exits 2, naming it. Reads only the run directories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from collapse import audit_runs as runs
from collapse.config import Config, prompt_tokens
from collapse.errors import ConfigError, DataError
from collapse.files import load_array, load_json


def _mark(cfg: Config, args):
    from collapse import watermark

    mark = watermark.of(cfg.sample)
    given = {k: v for k, v in (("scheme", args.scheme), ("key", args.key), ("context", args.context),
                               ("gamma", args.gamma)) if v is not None}
    mark = watermark.Watermark(**{**mark.__dict__, **given})
    if not mark.on:
        raise ConfigError("--scheme", f"{cfg.sample.watermark}: the run samples without a watermark; name the one "
                          "to test for (--scheme green_list|gumbel --key K)")
    return mark


def _line(what: str, d) -> str:
    return f"{what:<28} scored {d.scored:>8}  z {d.z:>9.3f}  log10 p {d.log10_p:>9.3f}"


def detect(args) -> None:
    from collapse import watermark

    store, cfg = runs.study(args.run)
    mark, V, P = _mark(cfg, args), runs.vocab(cfg, store), prompt_tokens(cfg)
    print(f"{store.path}: {mark.scheme} key {mark.key} context {mark.context}, closed model")
    for g in runs.generations(store, args.generation):
        for r, tokens in enumerate(runs.samples(store, cfg, g)):
            print(_line(f"generation {g} replicate {r}", watermark.detect(mark, tokens, V, P)))


def read(args) -> None:
    from collapse import certificate, watermark

    marked_store, marked_cfg = runs.study(args.marked)
    store, cfg = runs.study(args.suspect)
    mark, V, P = _mark(marked_cfg, args), runs.vocab(marked_cfg, marked_store), prompt_tokens(marked_cfg)
    [source] = runs.generations(marked_store, [args.marked_generation])
    if args.rows is not None and args.rows < 1:
        raise ConfigError("--rows", f"scores the first ROWS rows: give at least 1, got {args.rows}")
    marked_RNT = np.stack(runs.samples(marked_store, marked_cfg, source))[:, :args.rows]  # all rows by default
    print(f"{store.path} reading {marked_store.path} generation {source}: {mark.scheme} key {mark.key} "
          f"context {mark.context}, open model")
    corpus = None
    if args.filter not in (None, "training"):
        corpus = load_array(Path(args.filter))
        if corpus.ndim != 2:
            raise DataError(Path(args.filter), f"not token rows [N, T] (shape {corpus.shape})")
    origin = runs.origin_of(store, marked_store, source)  # `--filter training`: the suspect's rows of it
    texts_RNT = runs.per_replicate(cfg, marked_RNT)
    for g, family, params in runs.models(store, cfg, args.generation, V):
        predicted_RNT = family.top1(params, texts_RNT)
        for r in range(cfg.replicates):
            within = certificate.training_rows(store, g, r, origin) if args.filter == "training" else corpus
            d = watermark.detect(mark, texts_RNT[r], V, P, predicted_NT=predicted_RNT[r], within_NT=within)
            print(_line(f"generation {g} replicate {r}", d))


def _rank_line(what: str, t, name: str) -> str:
    return f"{what:<28} n {t.n:>8}  {name} {t.statistic:>9.4f}  z {t.z:>9.3f}  log10 p {t.log10_p:>9.3f}"


def membership(args) -> None:
    from collapse import membership

    source_store, source_cfg = runs.study(args.source)
    store, cfg = runs.study(args.suspect)
    runs.apart(store, cfg, source_store, source_cfg)
    V, P = runs.vocab(source_cfg, source_store), prompt_tokens(source_cfg)
    [j] = runs.generations(source_store, [args.source_generation])
    withheld = [source_store.array(j, r, "withheld") for r in range(source_cfg.replicates)]
    if not withheld[0].exists():
        raise DataError(withheld[0], "no withheld samples: the source run must draw them (sample.withheld > 0)")
    released_RNT = runs.per_replicate(cfg, np.stack(runs.samples(source_store, source_cfg, j)))
    withheld_RMT = runs.per_replicate(cfg, np.stack([load_array(path) for path in withheld]))
    print(f"{store.path} against {source_store.path} generation {j}: {released_RNT.shape[1]} released, "
          f"{withheld_RMT.shape[1]} withheld rows; U / (n released x n withheld) is the AUC")
    for g, family, params in runs.models(store, cfg, args.generation, V):
        logp_released_RN = family.logprob(params, released_RNT, skip=P)
        logp_withheld_RM = family.logprob(params, withheld_RMT, skip=P)
        for r in range(cfg.replicates):
            t = membership.released_vs_withheld(logp_released_RN[r], logp_withheld_RM[r])
            auc = membership.auc(t, released_RNT.shape[1], withheld_RMT.shape[1])
            print(_rank_line(f"generation {g} replicate {r}", t, "U") + f"  AUC {auc:.4f}")


def palimpsest(args) -> None:
    from collapse import certificate, membership

    source_store, source_cfg = runs.study(args.source)
    store, cfg = runs.study(args.suspect)
    runs.apart(store, cfg, source_store, source_cfg)
    V = runs.vocab(source_cfg, source_store)
    [j] = runs.generations(source_store, [args.source_generation], "train")
    rows, positions = [], []
    for r in range(source_cfg.replicates):
        rows.append(certificate.training_rows(source_store, j, r))
        positions.append(membership.training_order(source_cfg, j, r, len(rows[-1]), runs.lab_index(source_store)))
    rows_RNT, positions_RN = runs.per_replicate(cfg, np.stack(rows)), runs.per_replicate(cfg, np.stack(positions))
    reference_RN = None
    if args.reference:  # the suspect's replicate r less the reference's r (mod theirs), on the same rows
        ref_store, ref_cfg = runs.study(args.reference)
        runs.apart(ref_store, ref_cfg, source_store, source_cfg)
        [(_, family, params)] = runs.models(ref_store, ref_cfg, [args.reference_generation], V)
        R_ref = ref_cfg.replicates
        reference_RN = np.stack([family.logprob(params, np.repeat(rows_RNT[r:r + 1], R_ref, 0))[r % R_ref]
                                 for r in range(cfg.replicates)])
    print(f"{store.path} against the training order of {source_store.path} generation {j}"
          + (f", less {ref_store.path} generation {args.reference_generation}" if args.reference else ""))
    for g, family, params in runs.models(store, cfg, args.generation, V):
        if args.reference and ref_store.path == store.path and g == args.reference_generation:
            print(f"generation {g}: the reference itself (every score 0), not tested")
            continue
        logp_RN = family.logprob(params, rows_RNT)
        for r in range(cfg.replicates):
            ref = None if reference_RN is None else reference_RN[r]
            print(_rank_line(f"generation {g} replicate {r}", membership.palimpsest(logp_RN[r], positions_RN[r], ref),
                             "rho"))


def verify(args) -> None:
    from collapse import certificate

    store, _ = runs.study(args.run)
    exported = load_json(Path(args.certificate)) if args.certificate else None
    verdict = certificate.verify(store, exported)
    for g, share in verdict.certified.items():
        print(f"generation {g}: {share:.1%} of the training rows certified")
    for path, why in verdict.uncertified:
        print(f"uncertified: {path}: {why}")
    if verdict.problems:
        path, why = verdict.problems[0]
        print(f"collapse-audit: {path}: {why}" + (f" (and {len(verdict.problems) - 1} more)"
                                                   if len(verdict.problems) > 1 else ""), file=sys.stderr)
        raise SystemExit(1)
    print("every file matches" + (f" the certificate {exported['digest']}" if exported else ""))


def export(args) -> None:
    from collapse import certificate
    from collapse.files import save_json

    store, _ = runs.study(args.run)
    cert = certificate.export(store)
    out = Path(args.out or store.path / "certificate.json")
    save_json(out, cert)
    print(f"{out}: {len(cert['generations'])} generations, digest {cert['digest']}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="collapse-audit", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, helptext in (("detect", "closed model: the samples of a run's generations"),
                           ("read", "open model: a suspect run's models reading a run's watermarked samples")):
        p = sub.add_parser(name, help=helptext)
        if name == "detect":
            p.add_argument("run", help="the run directory whose samples are tested")
        else:
            p.add_argument("suspect", help="the run directory whose models are tested")
            p.add_argument("--marked", required=True, help="the run directory of the watermarked samples")
            p.add_argument("--marked-generation", type=int, default=0, help="their generation (default 0)")
            p.add_argument("--rows", type=int, help="score only the first ROWS rows of each replicate's corpus")
            p.add_argument("--filter", help="score only windows that occur in this corpus: `training` (the "
                           "suspect generation's training set) or a .npy of token rows")
        p.add_argument("--generation", type=int, nargs="+", help="generations to test (default: every finished)")
        p.add_argument("--scheme", choices=["green_list", "gumbel"], help="default: the marked run's")
        p.add_argument("--key", type=int, help="default: the marked run's sample.watermark_key")
        p.add_argument("--context", type=int, help="default: the marked run's sample.watermark_context")
        p.add_argument("--gamma", type=float, help="default: the marked run's sample.watermark_gamma")
    for name, helptext in (("membership", "without a watermark: the source's released against its withheld rows"),
                           ("palimpsest", "without a watermark: the source's training rows against their order")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("suspect", help="the run directory whose models are tested")
        p.add_argument("--source", required=True, help="the run directory whose " +
                       ("samples" if name == "membership" else "model's training order") + " the test reads")
        p.add_argument("--source-generation", type=int, default=0, help="its generation (default 0)")
        p.add_argument("--generation", type=int, nargs="+", help="the suspect's generations (default: every one)")
        if name == "palimpsest":
            p.add_argument("--reference", help="a run whose model's log-likelihood is subtracted (optional)")
            p.add_argument("--reference-generation", type=int, default=0, help="its generation (default 0)")
    p = sub.add_parser("verify", help="recompute the data certificate from the files")
    p.add_argument("run")
    p.add_argument("--certificate", help="an exported certificate to check the run against")
    p = sub.add_parser("certificate", help="export the data certificate as one JSON file")
    p.add_argument("run")
    p.add_argument("--out", help="default: RUN_DIR/certificate.json")
    args = ap.parse_args(argv)
    try:
        {"detect": detect, "read": read, "membership": membership, "palimpsest": palimpsest, "verify": verify,
         "certificate": export}[args.command](args)
    except (ConfigError, DataError) as e:
        print(f"collapse-audit: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(sys.argv[1:])
