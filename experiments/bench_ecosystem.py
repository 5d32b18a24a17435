"""Cost of an ecosystem (docs/ecosystems.md): the wall time of a K-lab study against K single-lab studies of the
same size (K = 2, 4; labs that read only themselves, W = I, so the work per lab is the same), at a small
grammar shape (model=tiny, V = 512, T = 64, 512 human sequences, 65 536 training tokens a generation,
3 generations, one replicate). Each study runs into a fresh directory after one untimed single-lab run that
fills the compilation cache; the ecosystem's extra work is the round's measures between labs (K(K-1)/2 pairs
of model passes over the test split, the pooled corpus' metrics).

    uv run python experiments/bench_ecosystem.py            # prints seconds and the ratio to K single studies
"""

import os
import shutil
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from collapse.config import Config, SampleConfig, TrainConfig  # noqa: E402
from collapse.data import GrammarConfig  # noqa: E402
from collapse.families import TinyConfig  # noqa: E402
from collapse.labs import LabConfig  # noqa: E402
from collapse.run import loop  # noqa: E402

CACHE = os.path.join(tempfile.gettempdir(), "collapse-bench-ecosystem-xla")


def config(labs=()) -> Config:
    return Config(data=GrammarConfig(vocab_size=512, n_states=32, n_train=512, n_valid=128, n_test=256, seq_len=64),
                  model=TinyConfig(), train=TrainConfig(batch_size=64, tokens=65536), sample=SampleConfig(batch_size=512),
                  generations=3, labs=list(labs), compilation_cache=CACHE)


def timed(cfg: Config) -> float:
    out = tempfile.mkdtemp()
    t0 = time.perf_counter()
    loop.run(cfg, os.path.join(out, "run"))
    seconds = time.perf_counter() - t0
    shutil.rmtree(out)
    return seconds


timed(config())  # compiles, fills the cache
single = timed(config())
print(f"single-lab study: {single:.1f} s")
for K in (2, 4):
    seconds = timed(config([LabConfig(f"l{k}") for k in range(K)]))
    print(f"{K} labs (W = I): {seconds:.1f} s = {seconds / (K * single):.2f} x {K} single-lab studies")
