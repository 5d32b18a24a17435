"""`collapse-audit`: a third party's tests on run directories: watermarks (docs/watermarks.md) and the data
certificate (docs/run-directory.md).

    collapse-audit detect RUN_DIR [--generation G ...] [--key K --scheme S --context C --gamma F]
        closed model: were the samples of RUN_DIR's generations written with this watermark? (default: the key
        and settings of RUN_DIR's own config)
    collapse-audit read SUSPECT_RUN --marked RUN_DIR --marked-generation G [--generation H ...] [key options]
        open model: does SUSPECT_RUN's model of generation H continue the windows of RUN_DIR's generation G
        samples (watermarked) with green tokens, or high r, more often than chance?

    collapse-audit verify RUN_DIR [--certificate FILE]
        the data certificate (collapse.certificate): recompute every root and digest from the files, print each
        generation's certified share of training rows; exit 1 naming the first file that does not match
    collapse-audit certificate RUN_DIR [--out FILE]
        export the certificate as one JSON file (its "digest" is the value to publish)

The watermark tests print one line per (generation, replicate): the tokens scored, z and log10 p. A bad
directory or option exits 2, naming it. Reads only the run directories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from collapse.config import Config, from_dict, generation_model, prompt_tokens
from collapse.errors import ConfigError, DataError
from collapse.files import load_array, load_json
from collapse.store import RunDir


def _study(path: str) -> tuple[RunDir, Config]:
    store = RunDir(path)
    try:
        cfg = from_dict(load_json(store.path / "config.json"))
    except (KeyError, TypeError) as e:
        raise DataError(store.path / "config.json", f"not a collapse config ({e})") from None
    if cfg.labs:
        raise DataError(store.path, "an ecosystem: audit one lab's directory, labs/<name>")
    return store, cfg


def _vocab(cfg: Config, store: RunDir) -> int:
    """The model's vocabulary: the run's tokenizer where it has one, else the grammar's size."""
    if store.tokenizer.exists():
        from collapse.data.tokenizer import load_tokenizer

        return load_tokenizer(store.tokenizer).vocab_size
    return cfg.data.vocab_bound()


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


def _generations(store: RunDir, asked: list[int] | None, phase: str = "sample") -> list[int]:
    """The generations asked for (default: every one) whose `phase` is done; one that is not is refused."""
    done = [g for g in store.generations() if store.is_done(g, phase)]
    for g in asked or []:
        if g not in done:
            raise DataError(store.gen(g), f"generation {g} has not finished its {phase} phase")
    return asked or done


def _samples(store: RunDir, cfg: Config, g: int) -> list[np.ndarray]:
    return [load_array(store.array(g, r, "samples")) for r in range(cfg.replicates)]


def _line(what: str, d) -> str:
    return f"{what:<28} scored {d.scored:>8}  z {d.z:>9.3f}  log10 p {d.log10_p:>9.3f}"


def detect(args) -> None:
    from collapse import watermark

    store, cfg = _study(args.run)
    mark, V, P = _mark(cfg, args), _vocab(cfg, store), prompt_tokens(cfg)
    print(f"{store.path}: {mark.scheme} key {mark.key} context {mark.context}, closed model")
    for g in _generations(store, args.generation):
        for r, tokens in enumerate(_samples(store, cfg, g)):
            print(_line(f"generation {g} replicate {r}", watermark.detect(mark, tokens, V, P)))


def read(args) -> None:
    from collapse import devices, watermark
    from collapse.validate import batch_sizes

    marked_store, marked_cfg = _study(args.marked)
    store, cfg = _study(args.suspect)
    mark, V, P = _mark(marked_cfg, args), _vocab(marked_cfg, marked_store), prompt_tokens(marked_cfg)
    if _vocab(cfg, store) != V:
        raise DataError(store.path, f"its models read {_vocab(cfg, store)} tokens, the marked run's text {V}")
    [source] = _generations(marked_store, [args.marked_generation])
    marked_RNT = np.stack(_samples(marked_store, marked_cfg, source))
    generations = _generations(store, args.generation, "train")
    layout = devices.make_layout(cfg.replicates, batch_sizes(cfg))
    print(f"{store.path} reading {marked_store.path} generation {source}: {mark.scheme} key {mark.key} "
          f"context {mark.context}, open model")
    for g in generations:
        family = generation_model(cfg, g).family(V, layout)
        params = store.load_params(g, family.abstract(cfg.replicates))
        texts_RNT = marked_RNT[np.arange(cfg.replicates) % len(marked_RNT)]  # replicate r reads r (mod theirs)
        predicted_RNT = family.top1(params, texts_RNT)
        for r in range(cfg.replicates):
            d = watermark.detect(mark, texts_RNT[r], V, P, predicted_NT=predicted_RNT[r])
            print(_line(f"generation {g} replicate {r}", d))


def verify(args) -> None:
    from collapse import certificate

    store, _ = _study(args.run)
    exported = load_json(Path(args.certificate)) if args.certificate else None
    verdict = certificate.verify(store, exported)
    for g, share in verdict.certified.items():
        print(f"generation {g}: {share:.1%} of the training rows certified")
    if verdict.problems:
        path, why = verdict.problems[0]
        print(f"collapse-audit: {path}: {why}" + (f" (and {len(verdict.problems) - 1} more)"
                                                   if len(verdict.problems) > 1 else ""), file=sys.stderr)
        raise SystemExit(1)
    print("every file matches" + (f" the certificate {exported['digest']}" if exported else ""))


def export(args) -> None:
    from collapse import certificate
    from collapse.files import save_json

    store, _ = _study(args.run)
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
        p.add_argument("--generation", type=int, nargs="+", help="generations to test (default: every finished)")
        p.add_argument("--scheme", choices=["green_list", "gumbel"], help="default: the marked run's")
        p.add_argument("--key", type=int, help="default: the marked run's sample.watermark_key")
        p.add_argument("--context", type=int, help="default: the marked run's sample.watermark_context")
        p.add_argument("--gamma", type=float, help="default: the marked run's sample.watermark_gamma")
    p = sub.add_parser("verify", help="recompute the data certificate from the files")
    p.add_argument("run")
    p.add_argument("--certificate", help="an exported certificate to check the run against")
    p = sub.add_parser("certificate", help="export the data certificate as one JSON file")
    p.add_argument("run")
    p.add_argument("--out", help="default: RUN_DIR/certificate.json")
    args = ap.parse_args(argv)
    try:
        {"detect": detect, "read": read, "verify": verify, "certificate": export}[args.command](args)
    except (ConfigError, DataError) as e:
        print(f"collapse-audit: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(sys.argv[1:])
