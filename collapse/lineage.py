"""`collapse-lineage RUN_DIR GENERATION ROW [--replicate R]`: the chain behind one training example.

Prints where row ROW of generation GENERATION's training set came from (a human train row, a fresh-reserve
row, or a sample row of generation j (in an ecosystem, of lab k's generation j: the chain follows it into
`labs/<k>/`), with, in continuation mode, the human train row whose prefix it
continues), its label source, and for each generation up the chain the model and what it was trained on,
down to human data. Reads only the run directory: `gen_NNN/rep_NN/train_provenance.npy`, `train_index.npy`,
`train_label_source.npy`, `prompt_index.npy`, with curation `curate_kept.npy`, `curate_scores.npy` and
`curate_scores_kept.npy`, and each generation's `provenance.json` (or, for runs written
before it, `manifest.json`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from collapse.errors import DataError
from collapse.provenance import label_name, origin_order
from collapse.files import load_array, load_json
from collapse.store import RunDir


def _record(store: RunDir, g: int) -> dict:
    """Generation g's provenance.json, else its manifest.json (composition under "counts")."""
    path = store.provenance(g)
    if path.exists():
        return load_json(path)
    manifest = load_json(store.manifest(g))  # DataError naming the file if missing
    return {**manifest, "replicates": [{**rep, "by_origin": rep["counts"]} for rep in manifest["replicates"]]}


def _array(store: RunDir, g: int, r: int, name: str) -> np.ndarray:
    return load_array(store.array(g, r, name))


def _human_train_size(store: RunDir, r: int) -> int:
    """Rows of the human train split replicate r trained on (its own on the grammar, else the shared one)."""
    path = store.human("train", r if store.human_replicates() else None)
    return len(np.load(path, mmap_mode="r")) if path.exists() else len(load_array(path))


def _model(rec: dict) -> str:
    if "model" not in rec:
        return ""
    params = f", {rec['parameters']:,} parameters" if "parameters" in rec else ""
    return f" (model {rec['model']}{params})"


def _composition(rep: dict) -> str:
    counts = sorted(rep["by_origin"].items(), key=lambda x: origin_order(x[0]))
    text = ", ".join(f"{origin} {n}" for origin, n in counts)
    depth = f"; mean synthetic depth {rep['mean_depth']:.4g}" if "mean_depth" in rep else ""
    return f"{sum(rep['by_origin'].values())} rows: {text}{depth}"


def _own_name(store: RunDir) -> str:
    """The lab a run directory is, in an ecosystem (`labs/<name>/`); "" for a single-lab study."""
    return store.path.name if store.path.parent.name == "labs" else ""


def _lab_store(store: RunDir, lab: str) -> RunDir:
    """The run directory of lab `lab` beside this one ("" or this lab: this one)."""
    return store if not lab or lab == _own_name(store) else RunDir(store.path.parent / lab)


def _lab_name(store: RunDir, k: int) -> str:
    """Lab k's name, from the ecosystem's config.json (two levels up)."""
    return load_json(store.path.parent.parent / "config.json")["labs"][k]["name"]


def _teacher_lab(store: RunDir) -> str:
    """The lab whose distributions label this lab's rows (`train.teacher=lab:<name>`), else ""."""
    return str(load_json(store.path / "config.json").get("train", {}).get("teacher", "")).partition("lab:")[2]


def _named(lab: str, g: int) -> str:
    return f"lab {lab}'s generation {g}" if lab else f"generation {g}"


def _curation(store: RunDir, g: int, r: int, i: int) -> str:
    """How sample row i of generation g came through curation: its candidate, of how many, and its score
    (corrected rows: also the score as kept)."""
    c = int(_array(store, g, r, "curate_kept")[i])
    scores, after = _array(store, g, r, "curate_scores"), float(_array(store, g, r, "curate_scores_kept")[i])
    line = f"  curation: kept candidate {c} of {len(scores)} (score {scores[c]:.4g})"
    return line if after == scores[c] else f"{line}, corrected to score {after:.4g}"


def _ranges(values: list[int]) -> str:
    """Sorted integers as ranges: [0, 1, 2, 5] -> "0..2, 5"."""
    parts, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(v) if start == v else f"{start}..{v}")
            start = None
    return ", ".join(parts)


def chain(run_dir: str | Path, generation: int, row: int, replicate: int = 0) -> list[str]:
    """The lines `collapse-lineage` prints."""
    store = RunDir(run_dir)
    if not (store.path / "config.json").exists():
        raise DataError(store.path / "config.json", "missing: not a collapse run directory")
    trained = [g for g in store.generations() if store.is_done(g, "train")]
    if generation not in trained:
        raise DataError(store.path, f"generation {generation} has no training set here; trained generations: "
                        f"{_ranges(trained) or 'none'}")
    reps = store.replicates(generation)
    if replicate not in reps:
        raise DataError(store.gen(generation), f"has no replicate {replicate}; replicates: {_ranges(reps) or 'none'}")
    prov_path = store.array(generation, replicate, "train_provenance")
    origins, index = load_array(prov_path), _array(store, generation, replicate, "train_index")
    if not 0 <= row < len(origins):
        raise DataError(prov_path, f"row {row} is out of range: generation {generation}'s training set has rows "
                        f"0..{len(origins) - 1}")
    rec = _record(store, generation)
    P = rec.get("prompt_tokens", 0)
    j, i = int(origins[row]), int(index[row])
    lab_path = store.array(generation, replicate, "train_lab")  # an ecosystem's lab: whose sample the row is
    lab = _lab_name(store, int(load_array(lab_path)[row])) if lab_path.exists() and j >= 0 else ""
    source_store = _lab_store(store, lab)
    lines = [f"generation {generation}, replicate {replicate}, training row {row}:"]
    if j < 0:
        n_train = _human_train_size(store, replicate)
        lines.append(f"  origin: human train row {i}" if i < n_train else
                     f"  origin: human, fresh reserve row {i - n_train} (never trained on before)")
    else:
        source = f"  origin: sample row {i} of {_named(lab, j)}"
        if P:
            prompt = int(_array(source_store, j, replicate, "prompt_index")[i])
            source += f", continuing the first {P} tokens of human train row {prompt}"
        lines.append(source)
        if source_store.array(j, replicate, "curate_kept").exists():
            lines.append(_curation(source_store, j, replicate, i))
    label_path = store.array(generation, replicate, "train_label_source")
    label = int(load_array(label_path)[row]) if label_path.exists() else -1
    teacher = _teacher_lab(store)  # soft labels of another lab's model: "<lab>/soft_gen_<j>"
    soft = f"{teacher}/" * bool(teacher) + label_name(label)
    lines.append(f"  labels: {'hard (its own tokens)' if label < 0 else soft}")
    lines.append(f"generation {generation}{_model(rec)} trained on {_composition(rec['replicates'][replicate])}")
    own = _own_name(store)
    todo = {(lab or own, j)} if j >= 0 else set()
    seen: set[tuple[str, int]] = set()
    while todo:  # every (lab,) generation whose samples reach this example, newest first
        lab, k = max(todo, key=lambda x: (x[1], x[0]))
        todo.remove((lab, k))
        seen.add((lab, k))
        record = _record(_lab_store(store, lab), k)
        rep = record["replicates"][replicate]
        lines.append(f"  {_named(lab if lab != own else '', k)}{_model(record)} was trained on {_composition(rep)}")
        for origin in rep["by_origin"]:
            if origin != "human":
                name, gen = origin_order(origin)
                todo.add((name or lab, gen))
        todo -= seen
    lines.append("  human data: the chain ends here")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="collapse-lineage", description=__doc__.split("\n\n")[1])
    parser.add_argument("run_dir")
    parser.add_argument("generation", type=int)
    parser.add_argument("row", type=int, help="row of that generation's training set")
    parser.add_argument("--replicate", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        print("\n".join(chain(args.run_dir, args.generation, args.row, args.replicate)))
    except DataError as e:
        print(f"collapse-lineage: input error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
