"""The benchmark's bookkeeping: parameter and FLOP counts in closed form, and a tiny end-to-end run."""

import dataclasses
import json
import sys

import pytest

from collapse import bench
from collapse.bench import measure
from collapse.families.transformer import TransformerFamily


def test_parameter_and_flop_counts_are_the_closed_forms():
    shape = measure.SHAPES["tiny"]
    d, L, T, V = shape.d_model, shape.layers, shape.context, measure.V
    # per layer: qkv 3d^2 + 3d, out d^2 + d, up 4d^2 + 4d, down 4d^2 + d, two layer norms 4d
    non_embedding = L * (12 * d * d + 13 * d) + 2 * d + d * V  # + final layer norm + output head (no bias)
    embedding = (V + 1 + T) * d  # tokens incl. BOS, positions
    family = TransformerFamily(shape.model(), V)
    assert measure.params_count(family) == (non_embedding + embedding, non_embedding)
    assert measure.train_flops_per_token(shape, non_embedding) == 6 * non_embedding + 12 * L * T * d


def test_a_tiny_run_writes_the_report_and_says_the_reference_is_missing(tmp_path, capsys):
    """The reference script absent, then present but turned off (--no-reference: it must not run); the second
    run reuses the first's compiled programs and skips the scaling table."""
    out, script = tmp_path / "benchmark.json", tmp_path / "reference.py"
    for no_reference in (False, True):
        if no_reference:
            script.write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
        skip = ["--no-reference", "--hf-python", sys.executable] if no_reference else []
        replicates = "" if no_reference else "1,2"
        bench.main(["--shapes", "tiny", "--steps", "2", "--gen-batch", "4", "--gen-len", "4", "--repeats", "1",
                    "--rounds", "1", "--cycle-tokens", "1024", "--replicates", replicates,
                    "--hf-script", str(script), "--out", str(out), *skip])
        assert "reporting ours only" in capsys.readouterr().out
        assert not (tmp_path / "ran").exists()
        report = json.loads(out.read_text())
        ours = report["shapes"]["tiny"]["ours"]
        assert "reference" not in report["shapes"]["tiny"]
        for key in ("train_tokens_per_s", "sample_tokens_per_s", "cycle_s", "train_mfu", "sample_bandwidth_fraction"):
            assert ours[key] > 0, key
        assert ours["cycle_s"] == 1024 / ours["train_tokens_per_s"] + 1024 / ours["sample_tokens_per_s"]
        if no_reference:
            assert "replicate_scaling" not in report
            continue
        assert set(report["replicate_scaling"]) == {"1", "2"}
        assert report["replicate_scaling"]["1"]["train_speedup_vs_sequential"] == 1.0


@pytest.mark.parametrize("name", ["tiny", "small", "gpt2_small"])
def test_shapes_are_the_model_options_collapse_composes(name):
    from tests.test_config import compose_cfg

    model = compose_cfg(f"model={name}").model
    assert measure.model_option(name) == model
    shape = measure.SHAPES[name]
    assert shape.cfg == model and shape.batch == measure.BATCH[name]
    assert (shape.d_model, shape.layers, shape.heads, shape.context) == (model.d_model, model.n_layers,
                                                                        model.n_heads, model.context)
    assert shape.model("float32") == dataclasses.replace(model, dtype="float32")


TINY_RUN = ["--shapes", "tiny", "--steps", "2", "--gen-batch", "4", "--gen-len", "4", "--repeats", "1",
            "--rounds", "1", "--cycle-tokens", "1024", "--replicates", ""]


def test_default_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    """The report goes to results/ and the reference script is ../shared/bench/hf_baseline.py, both from the
    working directory (here a stand-in script that records its arguments: the shape's model option)."""
    work, script = tmp_path / "repo", tmp_path / "shared" / "bench" / "hf_baseline.py"
    work.mkdir()
    script.parent.mkdir(parents=True)
    script.write_text(f"import json, sys\nopen({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                      "print(json.dumps({'train_tokens_per_s': 1e3, 'sample_tokens_per_s': 2e3, 'torch': 'stand-in', "
                      "'threads': 1}))\n")
    monkeypatch.chdir(work)
    bench.main([*TINY_RUN, "--hf-python", sys.executable])
    report = json.loads((work / "results" / "benchmark.json").read_text())
    assert report["shapes"]["tiny"]["reference"]["torch"] == "stand-in"
    argv = json.loads((tmp_path / "argv.json").read_text())
    tiny = measure.model_option("tiny")
    for flag, value in (("--d-model", tiny.d_model), ("--layers", tiny.n_layers), ("--heads", tiny.n_heads),
                        ("--seq-len", tiny.context), ("--batch", measure.BATCH["tiny"])):
        assert argv[argv.index(flag) + 1] == str(value)


def test_a_reference_asked_for_without_its_script_is_an_error(tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(SystemExit):
        bench.main([*TINY_RUN, "--hf-python", sys.executable])
    err = capsys.readouterr().err
    assert "../shared/bench/hf_baseline.py not found" in err and "--no-reference" in err
    assert not (work / "results").exists()
