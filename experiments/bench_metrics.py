"""Cost of one generation's metrics on one CPU core, at several corpus sizes.

    taskset -c 0 uv run python experiments/bench_metrics.py            # 0.25 M, 0.5 M, 1 M, 2 M tokens

Times `score.generation_metrics` on a synthetic corpus of the default grammar (V = 512, T = 64) with every
metric on: perplexity summaries, diversity (self-BLEU on its fixed 512-sequence subset), tails against the
human data and the exact truth, the exact true log-probabilities of the samples. The models are uniform
(no model cost), so the numbers are the metrics' own cost: a transformer's forward passes over the samples
and the test split are model cost, timed separately at the end for the default `model=tiny`. A second
row per size decodes the corpus as byte-level text (V = 256) for the compression ratio, as `data=text` does.
Threads are limited to one before NumPy and JAX load; run it with nothing else of yours running.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import dataclasses  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from collapse.config import Config, MetricsConfig  # noqa: E402
from collapse.data import grammar  # noqa: E402
from collapse.data.human import HumanData, load_human  # noqa: E402
from collapse.data.tokenizer import ByteTokenizer  # noqa: E402
from collapse.metrics import score  # noqa: E402

SIZES = [int(float(x) * 1e6) for x in (sys.argv[1:] or ["0.25", "0.5", "1", "2"])]


class UniformFamily:
    """Uniform models (the family protocol at no model cost: the timings are the metrics' own)."""

    def __init__(self, vocab_size: int):
        self.V = vocab_size

    def logprob(self, params_R, tokens_RNT, batch=256, skip=0):
        R, N, T = tokens_RNT.shape
        return np.full((R, N), -(T - skip) * np.log(self.V))

    def next_token_mass(self, params_R, tokens_RNT, batch=256, first=0):
        return np.full((len(tokens_RNT), self.V), 1 / self.V)


def bench(human: HumanData, samples_NT: np.ndarray, repeats: int = 3) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process), each the best of `repeats` runs. On a shared machine
    the CPU time is the robust one: it leaves out the time other processes held the core."""
    cfg = MetricsConfig()
    ref = score.reference(human, cfg)
    family, params, params0 = UniformFamily(human.vocab_size), object(), object()  # two distinct "models"
    run = lambda: score.generation_metrics(cfg, family, params, params0, [human], [ref],  # noqa: E731
                                           [samples_NT], [np.random.default_rng(0)])
    run()  # compiles the exact log-probability scan for this shape
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    cfg = Config()
    human = load_human(cfg.data, cfg.seed, cfg.generations)
    T = cfg.data.seq_len
    text_cfg = dataclasses.replace(cfg.data, vocab_size=256)
    text_truth = grammar.make_grammar(text_cfg)
    text_human = HumanData(human.train % 256, human.valid % 256, human.test % 256, human.fresh, 256,
                           tokenizer=ByteTokenizer())
    print(f"CPU cores allowed: {sorted(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.1f}; "
          f"grammar V={human.vocab_size}, T={T}")
    print("seconds for all metrics of one generation, best of 3 (wall / CPU time of this process)")
    print(f"{'tokens':>10} {'grammar wall':>13} {'cpu':>7} {'text wall':>10} {'cpu':>7}")
    for tokens in SIZES:
        n = tokens // T
        samples = np.asarray(grammar.sample(human.truth, jax.random.key(n), n, T))
        text_samples = np.asarray(grammar.sample(text_truth, jax.random.key(n), n, T))
        (gw, gc), (tw, tc) = bench(human, samples), bench(text_human, text_samples)
        print(f"{n * T:>10,} {gw:>12.2f}s {gc:>6.2f}s {tw:>9.2f}s {tc:>6.2f}s", flush=True)

    # For scale: the model passes the score phase adds for model=tiny (a forward pass over the samples under
    # model k and the gen-0 model, the test split for perplexity and next-token mass), per million tokens.
    from collapse.families.transformer import TransformerFamily

    family = TransformerFamily(cfg.model, human.vocab_size)
    p = family.init(jax.random.split(jax.random.key(0), 1))
    x = np.asarray(grammar.sample(human.truth, jax.random.key(1), 4096, T))[None]
    family.logprob(p, x)
    t0 = time.perf_counter()
    family.logprob(p, x)
    per_m = (time.perf_counter() - t0) / x.size * 1e6
    print(f"model=tiny forward pass: {per_m:.1f}s per million tokens on this core (model cost, not metric cost)")


if __name__ == "__main__":
    main()
