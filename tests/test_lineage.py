"""`collapse-lineage`: the chain behind one training example of a finished study, and clear refusals."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from collapse import lineage
from collapse.run import loop
from collapse.config import SampleConfig
from collapse.regimes import MixConfig
from collapse.errors import DataError
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("lineage")
    cfg = tiny_config(regime=MixConfig(human_fraction=0.25, fresh=True), generations=3,
                      sample=SampleConfig(batch_size=64, mode="continuation", prompt_len=4))
    loop.run(cfg, path)
    return cfg, path


def test_a_synthetic_example_traces_back_through_every_generation_to_human_data(run):
    cfg, path = run
    origins = np.load(path / "gen_002" / "rep_00" / "train_provenance.npy")
    index = np.load(path / "gen_002" / "rep_00" / "train_index.npy")
    row = int(np.flatnonzero(origins == 1)[5])
    prompt = int(np.load(path / "gen_001" / "rep_00" / "prompt_index.npy")[index[row]])
    lines = lineage.chain(path, 2, row)
    assert lines == [
        f"generation 2, replicate 0, training row {row}:",
        f"  origin: sample row {index[row]} of generation 1, continuing the first 4 tokens of human train row {prompt}",
        "  labels: hard (its own tokens)",
        "generation 2 (model transformer, 19,232 parameters) trained on 64 rows: human 16, gen_1 48; "
        "mean synthetic depth 1.312",
        "  generation 1 (model transformer, 19,232 parameters) was trained on 64 rows: human 16, gen_0 48; "
        "mean synthetic depth 0.75",
        "  generation 0 (model transformer, 19,232 parameters) was trained on 64 rows: human 64; "
        "mean synthetic depth 0",
        "  human data: the chain ends here"]


def test_a_human_example_names_its_split_and_row(run):
    _, path = run
    index = np.load(path / "gen_002" / "rep_00" / "train_index.npy")
    # regime=mix fresh=true: generation 2 takes fresh rows 16..31, numbered after the 64 train rows
    assert lineage.chain(path, 2, 0)[1] == f"  origin: human, fresh reserve row {index[0] - 64} (never trained on before)"
    assert index[0] - 64 == 16
    assert lineage.chain(path, 0, 7)[1] == "  origin: human train row 7"


def test_the_command_prints_the_chain_and_refuses_what_it_cannot_read(run, tmp_path):
    _, path = run
    cmd = [sys.executable, "-m", "collapse.lineage"]
    out = subprocess.run([*cmd, str(path), "1", "40"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("generation 1, replicate 0, training row 40:\n  origin: sample row")
    bad = subprocess.run([*cmd, str(path), "1", "64"], capture_output=True, text=True)
    assert bad.returncode == 2 and ("train_provenance.npy: row 64 is out of range: generation 1's training set has "
                                    "rows 0..63") in bad.stderr
    with pytest.raises(DataError, match="config.json: missing"):
        lineage.chain(tmp_path, 0, 0)
    with pytest.raises(DataError, match="gen_001: has no replicate 3; replicates: 0$"):
        lineage.chain(path, 1, 0, replicate=3)
    with pytest.raises(DataError, match="generation 5 has no training set here; trained generations: 0..2$"):
        lineage.chain(path, 5, 0)
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    (copy / "gen_001" / "provenance.json").unlink()
    (copy / "gen_001" / "manifest.json").unlink()
    with pytest.raises(DataError, match="gen_001/manifest.json: missing"):
        lineage.chain(copy, 2, 40)
