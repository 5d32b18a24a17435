"""The data certificate: Merkle roots by hand, an untouched run verifies whole, and each tampering is named."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from collapse import audit, certificate
from collapse.files import load_array, load_json, save_array, save_json
from tests.helpers import tiny_config


def test_merkle_root_by_hand():
    rows = np.array([[1, 2], [3, 4], [5, 6]], np.int32)
    leaf = [hashlib.sha256(b"\x00" + np.asarray(r, "<i4").tobytes()).digest() for r in rows]
    ab = hashlib.sha256(b"\x01" + leaf[0] + leaf[1]).digest()
    assert certificate.merkle_root(rows) == hashlib.sha256(b"\x01" + ab + leaf[2]).hexdigest()  # c carried up
    assert certificate.merkle_root(rows[:1]) == leaf[0].hex()
    assert certificate.merkle_root(rows[:0]) == hashlib.sha256(b"").hexdigest()
    assert certificate.merkle_root(rows[::-1]) != certificate.merkle_root(rows)  # training order counts


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny study of 3 generations under accumulate (generation 2 trains on human rows, gen_0 and gen_1)."""
    from collapse.regimes import AccumulateConfig
    from collapse.run import loop

    return loop.run(tiny_config(generations=3, regime=AccumulateConfig()), tmp_path_factory.mktemp("cert") / "run")


def _copy(run, tmp_path):
    from collapse.store import RunDir

    shutil.copytree(run.path, tmp_path / "copy")
    return RunDir(tmp_path / "copy")


def _first_problem(store, exported=None):
    verdict = certificate.verify(store, exported)
    return verdict, (str(verdict.problems[0][0].relative_to(store.path)) if verdict.problems else None)


def test_an_untouched_run_is_certified_whole_and_records_its_roots(run):
    record = load_json(run.provenance(2))["certificate"]
    assert set(record["replicates"][0]["roots"]) == {"human", "gen_0", "gen_1"}
    assert set(record["links"]) == {"gen_0", "gen_1"}
    verdict = certificate.verify(run)
    assert verdict.problems == [] and verdict.certified == {0: 1.0, 1: 1.0, 2: 1.0}
    exported = certificate.export(run)
    assert certificate.verify(run, exported).problems == []
    assert len(json.dumps(exported)) < 10_000


def test_a_flipped_token_in_a_sample_is_named_even_with_its_marker_redone(run, tmp_path):
    store = _copy(run, tmp_path)
    path = store.array(0, 0, "samples")
    samples = load_array(path)
    samples[3, 5] = (samples[3, 5] + 1) % 16
    save_array(path, samples)
    verdict, first = _first_problem(store)
    assert first == "gen_000/rep_00/samples.npy"
    marker = load_json(store.marker(0, "sample"))  # the marker "repaired" to the new file: the roots still catch it
    marker["outputs"] = {k: certificate.digest(store.path / k) for k in marker["outputs"]}
    save_json(store.marker(0, "sample"), marker)
    verdict, _ = _first_problem(store)
    assert any(str(p).endswith("gen_000/rep_00/samples.npy") and "certificate" in why for p, why in verdict.problems)
    assert verdict.certified[0] == 1.0 and verdict.certified[1] < 1.0 and verdict.certified[2] < 1.0


def test_a_changed_checkpoint_is_named(run, tmp_path):
    store = _copy(run, tmp_path)
    victim = max((p for p in store.checkpoint(1).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    _, first = _first_problem(store)
    assert first.startswith("gen_001/checkpoint")


def test_a_marker_edited_by_hand_is_named_and_the_last_one_needs_the_exported_certificate(run, tmp_path):
    store = _copy(run, tmp_path)
    exported = certificate.export(store)
    for g in (0, 2):
        marker = load_json(store.marker(g, "train"))
        marker["steps"] = marker.get("steps", 0) + 1
        save_json(store.marker(g, "train"), marker)
    _, first = _first_problem(store)
    assert first == "gen_000/train.done"  # generation 1's link to generation 0
    verdict = certificate.verify(store)
    assert not any("gen_002/train.done" in str(p) for p, _ in verdict.problems)  # no later generation links it
    verdict, _ = _first_problem(store, exported)
    assert any(str(p).endswith("gen_002/provenance.json") and "exported" in why for p, why in verdict.problems)


def test_collapse_audit_verify_and_export(run, tmp_path, capsys):
    audit.main(["certificate", str(run.path), "--out", str(tmp_path / "cert.json")])
    audit.main(["verify", str(run.path), "--certificate", str(tmp_path / "cert.json")])
    out = capsys.readouterr().out
    assert "generation 2: 100.0% of the training rows certified" in out and "every file matches" in out
    store = _copy(run, tmp_path)
    samples = load_array(store.array(1, 0, "samples"))
    save_array(store.array(1, 0, "samples"), samples[::-1])
    with pytest.raises(SystemExit) as stop:
        audit.main(["verify", str(store.path)])
    assert stop.value.code == 1 and "gen_001/rep_00/samples.npy" in capsys.readouterr().err
