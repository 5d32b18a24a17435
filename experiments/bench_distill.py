"""Cost of the training targets (docs/training-targets.md): training tokens/s with hard targets, soft targets
from the teacher run online, and soft targets from its stored top-k, at the default shape (`model=tiny`,
grammar V = 512, T = 64, batch 64, one replicate).

    uv run python experiments/bench_distill.py              # 3 repeats of 100 steps per target
    uv run python experiments/bench_distill.py --cpu-devices 1

Every row of the training set is soft (distill_on=both), the most expensive case. `train.fit` is timed
whole, after one untimed run that compiles, so topk includes its one teacher pass over the training set
(which the per-step figure amortises over the steps: here 100; timed alone on the next line). Prints tokens/s (median of the repeats),
time per step, and the bytes per token topk holds in memory (k · (4 + 4): float32 log-probability and int32 id).
"""

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import dataclasses  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--top-k", type=int, default=32)
parser.add_argument("--cpu-devices", type=int, default=1, help="XLA CPU devices (1: one device, all cores)")
args = parser.parse_args()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", args.cpu_devices)  # CPU only; before JAX starts

import numpy as np  # noqa: E402

from collapse import distill  # noqa: E402
from collapse.config import TrainConfig  # noqa: E402
from collapse.data import GrammarConfig  # noqa: E402
from collapse.families import TinyConfig  # noqa: E402
from collapse.data import grammar  # noqa: E402
from collapse.devices import make_layout  # noqa: E402
from collapse.families.transformer import TransformerFamily  # noqa: E402

V, T, B = GrammarConfig().vocab_size, GrammarConfig().seq_len, 64
N = B * args.steps  # one epoch of `steps` steps
layout = make_layout(1, {"train.batch_size": B})
family = TransformerFamily(TinyConfig(), V, layout)
data_RNT = np.asarray(grammar.sample(grammar.make_grammar(GrammarConfig()), jax.random.key(0), N, T), np.int32)[None]
student = family.init(jax.random.split(jax.random.key(1), 1))
teacher = distill.Teacher(family.graphdef, family.init(jax.random.split(jax.random.key(2), 1)), np.ones((1, N), bool))
base = TrainConfig(batch_size=B, epochs=1, log_every=50)
targets = {
    "tokens": (base, None),
    "soft online": (dataclasses.replace(base, target="soft", distill_on="both"), teacher),
    f"soft topk (k={args.top_k})": (dataclasses.replace(base, target="soft", distill_on="both", teacher_probs="topk",
                                                        soft_top_k=args.top_k), teacher),
}
print(f"{jax.device_count()} x {jax.devices()[0].device_kind}, jax {jax.__version__}; model=tiny, V={V}, T={T}, "
      f"B={B}, {args.steps} steps per run, median of {args.repeats}")
print(f"{'target':<22} {'tokens/s':>10} {'ms/step':>8} {'vs tokens':>9} {'bytes/token':>11}")
reference = None
for name, (cfg, t) in targets.items():
    run = lambda: family.fit(student, data_RNT, [np.random.default_rng(0)], cfg, teacher=t)  # noqa: E731
    jax.block_until_ready(run()[0])  # compile
    seconds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run()[0])
        seconds.append(time.perf_counter() - t0)
    s = float(np.median(seconds))
    rate = N * T / s
    reference = reference or rate
    stored = cfg.soft_top_k * 8 if cfg.teacher_probs == "topk" and t is not None else 0
    print(f"{name:<22} {rate:>10.0f} {1e3 * s / args.steps:>8.2f} {rate / reference:>9.2f} {stored:>11}")
    if stored:  # of which the one teacher pass that stores the top-k (once per generation, before the steps)
        distill.teacher_topk(t, data_RNT, cfg.soft_temperature, cfg.soft_top_k, cfg.batch_size, layout)
        t0 = time.perf_counter()
        distill.teacher_topk(t, data_RNT, cfg.soft_temperature, cfg.soft_top_k, cfg.batch_size, layout)
        pass_s = time.perf_counter() - t0
        rest = s - pass_s
        print(f"{'  of which top-k pass':<22} {'':>10} {1e3 * pass_s / args.steps:>8.2f}   (steps alone: "
              f"{N * T / rest:.0f} tokens/s, {N * T / rest / reference:.2f} "
              f"vs tokens)")
