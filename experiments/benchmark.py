"""Speed of one analytic study: 100 replicates × 1000 generations of the 1-D Gaussian, M = 100 points a
generation (regime=replace), in one compiled program. Prints compilation, run and their total (what a study
costs before any file is written), once per fresh compilation. Measure on one core:

    taskset -c 0 uv run python experiments/benchmark.py
"""

import argparse
import time

t0 = time.perf_counter()
from collapse.config import Config  # noqa: E402
from collapse.families import GaussianConfig  # noqa: E402
from collapse.families import analytic  # noqa: E402

imported = time.perf_counter() - t0
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--repeats", type=int, default=3, help="fresh compilations (the first includes XLA start-up)")
args = parser.parse_args()
cfg = Config(model=GaussianConfig(samples=100), generations=1000, replicates=100, compilation_cache="")
print(f"imports {imported:.2f} s")
for i in range(args.repeats):
    t = time.perf_counter()
    sim = analytic.simulate(cfg)
    total = time.perf_counter() - t
    print(f"run {i}: compile {sim.compile_seconds:.2f} s + run {sim.seconds:.2f} s = {total:.2f} s "
          f"(100 replicates x 1000 generations, var_ratio at the end {sim.metrics['var_ratio'][-1].mean():.2e})")
