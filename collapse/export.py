"""`collapse-export RUN_DIR GENERATION OUT_DIR`: one replicate of a generation's model as a Hugging Face folder
(config.json, model.safetensors and the run's tokenizer as tokenizer.json), for `transformers` or
lm-eval-harness, and for `model=pretrained model.path=OUT_DIR` (which reads it back exactly).

Our own models read BOS as an extra id V that they never predict: the folder's vocabulary has V + 1 entries,
the head's BOS row is zero and config.json says so (`collapse_bos_never_predicted`); a reader other than
collapse should renormalise over the first V. A run on bytes has no tokenizer file to write (its ids are UTF-8
bytes); a run on the grammar none at all.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from collapse import audit_runs
from collapse.config import generation_model
from collapse.errors import DataError


def export(run_dir: str, g: int, out: str, replicate: int = 0) -> Path:
    """Write generation g's model (replicate `replicate`) of the run at `run_dir` into the folder `out`."""
    import jax
    from flax import nnx

    from collapse import devices, pretrained
    from collapse.families import TransformerConfig

    store, cfg = audit_runs.study(run_dir)
    audit_runs.generations(store, [g], "train")
    model = generation_model(cfg, g)
    if not isinstance(model, TransformerConfig):
        raise DataError(store.path, f"its model ({model.name}) is not a transformer: nothing to export")
    if not 0 <= replicate < cfg.replicates:
        raise DataError(store.path, f"has replicates 0..{cfg.replicates - 1}, not {replicate}")
    V = audit_runs.vocab(cfg, store)
    family = model.family(V, devices.single())
    params = jax.tree.map(lambda x: x[replicate], store.load_params(g, family.abstract(cfg.replicates)))
    tokenizer = None
    if store.tokenizer.exists():
        from collapse.data.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(store.tokenizer)
        tokenizer = tokenizer if hasattr(tokenizer, "save_pretrained_files") else None
    folder = pretrained.write_folder(out, nnx.to_pure_dict(params), model, family.vocab_size, tokenizer)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):  # a checkpoint's special tokens (its BOS)
        source = Path(getattr(model, "path", "") or ".") / name
        if getattr(model, "path", "") and source.is_file():
            shutil.copyfile(source, folder / name)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="collapse-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("generation", type=int)
    parser.add_argument("out_dir")
    parser.add_argument("--replicate", type=int, default=0, help="which replicate's model (default 0)")
    args = parser.parse_args(argv)
    try:
        path = export(args.run_dir, args.generation, args.out_dir, args.replicate)
    except DataError as e:
        print(f"collapse-export: {e}", file=sys.stderr)
        sys.exit(2)
    print(path)
