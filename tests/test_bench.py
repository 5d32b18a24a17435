"""The benchmark's bookkeeping: parameter and FLOP counts in closed form, and a tiny end-to-end run."""

import json
import sys

import pytest

from collapse import bench
from collapse.families.transformer import TransformerFamily


def test_parameter_and_flop_counts_are_the_closed_forms():
    shape = bench.SHAPES["tiny"]
    d, L, T, V = shape.d_model, shape.layers, shape.context, bench.V
    # per layer: qkv 3d^2 + 3d, out d^2 + d, up 4d^2 + 4d, down 4d^2 + d, two layer norms 4d
    non_embedding = L * (12 * d * d + 13 * d) + 2 * d + d * V  # + final layer norm + output head (no bias)
    embedding = (V + 1 + T) * d  # tokens incl. BOS, positions
    family = TransformerFamily(shape.model(), V)
    assert bench.params_count(family) == (non_embedding + embedding, non_embedding)
    assert bench.train_flops_per_token(shape, non_embedding) == 6 * non_embedding + 12 * L * T * d


@pytest.mark.parametrize("no_reference", [False, True])
def test_a_tiny_run_writes_the_report_and_says_the_reference_is_missing(tmp_path, capsys, no_reference):
    """The reference script absent, or present but turned off (--no-reference: it must not run)."""
    out, script = tmp_path / "benchmark.json", tmp_path / "reference.py"
    if no_reference:
        script.write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    skip = ["--no-reference", "--hf-python", sys.executable] if no_reference else []
    bench.main(["--shapes", "tiny", "--steps", "2", "--gen-batch", "4", "--gen-len", "4", "--repeats", "1",
                "--rounds", "1", "--cycle-tokens", "1024", "--replicates", "1,2",
                "--hf-script", str(script), "--out", str(out), *skip])
    assert "reporting ours only" in capsys.readouterr().out
    assert not (tmp_path / "ran").exists()
    report = json.loads(out.read_text())
    ours = report["shapes"]["tiny"]["ours"]
    assert "reference" not in report["shapes"]["tiny"]
    for key in ("train_tokens_per_s", "sample_tokens_per_s", "cycle_s", "train_mfu", "sample_bandwidth_fraction"):
        assert ours[key] > 0, key
    assert ours["cycle_s"] == 1024 / ours["train_tokens_per_s"] + 1024 / ours["sample_tokens_per_s"]
    assert set(report["replicate_scaling"]) == {"1", "2"}
    assert report["replicate_scaling"]["1"]["train_speedup_vs_sequential"] == 1.0
