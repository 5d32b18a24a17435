"""A data certificate anyone can check from a run directory (docs/run-directory.md#the-data-certificate).

Each generation's `provenance.json` holds, under "certificate", per replicate a Merkle root (SHA-256) over the
rows of its training set from each origin, in training order, and the roots of the human splits those rows come
from (the anchor); and per synthetic origin gen_j the digests of generation j's provenance.json and phase
markers as they were when this generation trained (the link: generation j's markers hold the digests of its
checkpoint and samples, its provenance.json its own roots; not the score phase's, which may be redone). `verify` recomputes every root from the files the
rows come from and every digest, and says per generation which share of the rows it certifies (their chain
reaches the human splits unbroken) and the first file that does not match. `export` is the whole chain as one
small JSON file whose own digest can be published; `verify` against it also covers what no later generation
records (the last generation's markers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collapse.errors import DataError
from collapse.files import digest, load_array, load_json
from collapse.provenance import LAB_CODE, origin_name, origin_namer, origins
from collapse.store import PHASES, RunDir

FORMAT = 1


def merkle_root(rows_NT: np.ndarray) -> str:
    """SHA-256 Merkle root of the rows (int32, little-endian; a leaf is sha256(0x00 row), a node sha256(0x01
    left right), an odd node carried up as it is); the empty set's is sha256 of nothing."""
    level = [hashlib.sha256(b"\x00" + np.ascontiguousarray(row, "<i4").tobytes()).digest() for row in rows_NT]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        pairs = [hashlib.sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2])]
        level = pairs + level[len(pairs) * 2:]
    return level[0].hex()


def origin_roots(tokens_NT: np.ndarray, codes_N: np.ndarray, name: Callable[[int], str] = origin_name
                 ) -> dict[str, str]:
    """{origin's name ("human", "gen_<j>", in an ecosystem "<lab>/gen_<j>"): Merkle root of the training rows of
    that origin, in training order}."""
    return {name(int(c)): merkle_root(tokens_NT[codes_N == c]) for c in np.unique(codes_N)}


LINKED = ("train", "sample")  # the phases whose outputs a later training set rests on (not score: it may be redone)


def _phase_digests(store: RunDir, j: int) -> dict[str, str | None]:
    return {"provenance.json": digest(store.provenance(j)),
            **{f"{p}.done": digest(store.marker(j, p)) for p in LINKED if store.is_done(j, p)}}


def anchor(train_NT: np.ndarray, fresh_NT: np.ndarray, provenance_N: np.ndarray, index_N: np.ndarray) -> dict:
    """The roots of the human rows a training set indexes: the whole train split, and the fresh reserve up to the
    last row it uses (a human row's `train_index` counts on from the train split into the reserve, which grows
    when a study is extended, so only the prefix used is certified)."""
    used = index_N[(provenance_N < 0) & (index_N >= len(train_NT))] - len(train_NT)
    k = int(used.max()) + 1 if len(used) else 0
    return {"train": merkle_root(train_NT), "fresh": merkle_root(fresh_NT[:k]), "fresh_rows": k}


def record(store: RunDir, sets: list, humans: list, labs: list[str] | None = None,
           store_of: Callable[[int], RunDir] | None = None) -> dict:
    """Generation g's certificate entry (written into its provenance.json by the train phase): the roots of each
    replicate's training set by origin (`sets[r]`: tokens, provenance, index, lab) and of the human rows they
    index (`humans[r]`: train and fresh), and the links to the generations it drew from. In an ecosystem
    (`labs`: the names) an origin is a lab's generation, whose directory `store_of(code)` gives."""
    name, codes = origin_namer(labs), [origins(ts.provenance, ts.lab) for ts in sets]
    parents = sorted({int(c) for cs in codes for c in np.unique(cs) if c >= 0})
    return {"format": FORMAT,
            "replicates": [{"roots": origin_roots(ts.tokens, cs, name),
                            "human": anchor(h.train, h.fresh, ts.provenance, ts.index)}
                           for ts, cs, h in zip(sets, codes, humans)],
            "links": {name(c): _phase_digests(store_of(c) if store_of else store, c % LAB_CODE) for c in parents}}


def _human_file(store: RunDir, split: str, r: int) -> Path:
    return store.human(split, r if store.human_replicates() else None)


@dataclass
class Verdict:
    """What `verify` found: per generation the share of rows certified, every mismatch (file, why), and the
    generations that hold no certificate (file, why: uncertified, not tampered)."""

    certified: dict[int, float] = field(default_factory=dict)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    uncertified: list[tuple[Path, str]] = field(default_factory=list)


def _labs(store: RunDir) -> list[dict] | None:
    """The labs (config dicts) of the ecosystem whose lab's directory (`<ecosystem>/labs/<name>`) this is, else None."""
    root = store.path.parent.parent / "config.json"
    if store.path.parent.name != "labs" or not root.exists():
        return None
    return load_json(root).get("labs", [])


def lab_names(store: RunDir) -> list[str] | None:
    labs = _labs(store)
    return None if labs is None else [lab["name"] for lab in labs]


def _source(store: RunDir, name: str) -> tuple[RunDir, int]:
    """The directory and generation of the synthetic origin `name` of a training set in `store`: "gen_<j>" its
    own, "<lab>/gen_<j>" a lab of its ecosystem."""
    lab, _, gen = name.rpartition("/")
    return (RunDir(store.path.parent / lab) if lab else store), int(gen.removeprefix("gen_"))


def _crawled(store: RunDir, g: int) -> bool:
    """Whether generation g of this ecosystem lab trained on a crawl of the web (whose new human rows are in no
    file)."""
    return g > 0 and any(lab["name"] == store.path.name and lab.get("crawl") for lab in _labs(store) or [])


def _namer(store: RunDir, g: int, r: int) -> Callable[[int], str]:
    """The names of generation g's origin codes: "<lab>/gen_<j>" where the run is an ecosystem's lab."""
    return origin_namer(lab_names(store) if store.array(g, r, "train_lab").exists() else None)


def _rows(store: RunDir, g: int, r: int, human: np.ndarray, origin: str | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, Path]]:
    """Generation g's training rows of replicate r rebuilt from the files (those of `origin` only, if given), each
    row's origin code and its row in its source, and each origin's file. A crawled generation's human rows are
    refused."""
    prov_N, index_N = (load_array(store.array(g, r, name)) for name in ("train_provenance", "train_index"))
    lab_file = store.array(g, r, "train_lab")
    codes_N = origins(prov_N, load_array(lab_file) if lab_file.exists() else None)
    name = _namer(store, g, r)
    if origin is not None:
        keep = np.array([name(int(c)) == origin for c in codes_N], bool)
        codes_N, index_N = codes_N[keep], index_N[keep]
    rows_NT, sources = np.zeros((len(codes_N), human.shape[1]), np.int32), {-1: _human_file(store, "train", r)}
    for c in np.unique(codes_N):
        at = codes_N == c
        if c < 0 and _crawled(store, g):
            raise DataError(store.provenance(g), "trained on a crawl of the web, whose new human rows are in no "
                                                 "file: its human rows cannot be rebuilt")
        if c < 0:
            rows_NT[at] = human[index_N[at]]
        else:
            src, j = _source(store, name(int(c)))
            own = store.array(g, r, "online_tokens")  # regime=online: rows sampled while training, kept here
            sources[int(c)] = own if own.exists() else src.array(j, r, "samples")
            rows_NT[at] = load_array(sources[int(c)])[index_N[at]]
    return rows_NT, codes_N, index_N, sources


def _human(store: RunDir, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicate r's human train split and fresh reserve (empty where the run has none)."""
    train = load_array(_human_file(store, "train", r))
    fresh_file = _human_file(store, "fresh", r)
    return train, load_array(fresh_file) if fresh_file.exists() else train[:0]


def training_rows(store: RunDir, g: int, r: int, origin: str | None = None) -> np.ndarray:
    """Generation g's training set of replicate r `[N, T]` in its stored order, rebuilt from the files; with
    `origin` ("human", "gen_<j>", "<lab>/gen_<j>") only its rows from there."""
    return _rows(store, g, r, np.concatenate(_human(store, r)), origin)[0]


def _check(store: RunDir, g: int, verdict: Verdict, checked: dict) -> tuple[bool, float]:
    """Generation g of `store`: whether its whole chain holds, and the share of its training rows certified (their
    chain reaches the human splits unbroken); the generations it drew from, in any lab, are checked first (once:
    `checked`, which holds a generation as failed while it is checked, so a chain edited into a loop ends).
    Every mismatch joins `verdict.problems`."""
    if (store.path, g) in checked:
        return checked[store.path, g]
    checked[store.path, g] = (False, 0.0)
    problems = verdict.problems
    bad = len(problems)
    for phase in PHASES:
        if store.is_done(g, phase):
            for rel, value in load_json(store.marker(g, phase)).get("outputs", {}).items():
                if digest(store.path / rel) != value:
                    problems.append((store.path / rel, f"changed since {phase}.done recorded it"))
    cert = load_json(store.provenance(g)).get("certificate")
    if cert is None:
        earlier = next((j for j in range(g) if "certificate" in load_json(store.provenance(j))), None)
        if _crawled(store, g) or earlier is None:  # a crawl, or a run from before certificates existed
            verdict.uncertified.append((store.provenance(g), "no certificate (trained on a crawl of the web, whose "
                                        "new human rows are in no file, or written before certificates existed)"))
        else:
            problems.append((store.provenance(g), f"no certificate, where generation {earlier} holds one"))
        return checked[store.path, g]
    parents = {}
    for origin, digests in cert["links"].items():
        src, j = _source(store, origin)
        parents[origin] = _check(src, j, verdict, checked)[0]
        current = _phase_digests(src, j)
        for name, value in digests.items():  # every digest recorded: a marker deleted since is a change too
            if current.get(name) != value:
                problems.append((src.gen(j) / name, f"changed or removed since {store.path.name} generation {g} "
                                                    "trained on it"))
    name = _namer(store, g, 0)
    certified_rows = total = 0
    for r, rec in enumerate(cert["replicates"]):
        train, fresh = _human(store, r)
        rows_NT, codes_N, index_N, sources = _rows(store, g, r, np.concatenate([train, fresh]))
        found, anchored = anchor(train, fresh, np.where(codes_N < 0, -1, 0), index_N), True
        for split in ("train", "fresh"):
            if rec["human"].get(split) != found[split]:
                problems.append((_human_file(store, split, r), f"does not match generation {g}'s certificate"))
                anchored = False
        for c in np.unique(codes_N):
            origin, n = name(int(c)), int((codes_N == c).sum())
            good = rec["roots"].get(origin) == merkle_root(rows_NT[codes_N == c])
            if not good:
                problems.append((sources[int(c)], f"rows of generation {g}'s training set ({origin}) do not match "
                                                  "its certificate"))
            total += n
            certified_rows += n if good and (anchored if c < 0 else parents.get(origin, False)) else 0
    checked[store.path, g] = (len(problems) == bad and certified_rows == total, certified_rows / max(total, 1))
    return checked[store.path, g]


def verify(store: RunDir, exported: dict | None = None) -> Verdict:
    """Recompute every generation's certificate from the files, and those of the generations its chain reaches in
    other labs of an ecosystem (and compare with an exported one)."""
    verdict, checked = Verdict(), {}
    for g in store.generations():
        if not store.is_done(g, "train"):
            break
        verdict.certified[g] = _check(store, g, verdict, checked)[1]
    if exported is not None:
        mine = export(store)
        for theirs, ours in zip(exported.get("generations", []), mine["generations"]):
            if theirs != ours:
                verdict.problems.append((store.provenance(ours["generation"]), "differs from the exported certificate"))
        if len(exported.get("generations", [])) > len(mine["generations"]):
            verdict.problems.append((store.path, "holds fewer generations than the exported certificate"))
    return verdict


def export(store: RunDir) -> dict:
    """The chain as one JSON object: per generation its certificate entry and the digests of its provenance.json
    and phase markers; `digest` is the SHA-256 of the canonical JSON of the generations (the value to publish)."""
    generations = []
    for g in store.generations():
        if not store.is_done(g, "train"):
            break
        generations.append({"generation": g, "certificate": load_json(store.provenance(g)).get("certificate"),
                            "files": _phase_digests(store, g)})
    body = json.dumps(generations, sort_keys=True, separators=(",", ":")).encode()
    return {"format": FORMAT, "generations": generations, "digest": hashlib.sha256(body).hexdigest()}
