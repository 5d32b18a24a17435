"""Cost of watermarked sampling (docs/watermarks.md): sampled tokens/s with no watermark, the green list and the
Gumbel rule, at the default shape (`model=tiny`, grammar V = 512, 64-token sequences from BOS, one replicate),
and the cost of detection (tokens/s of `collapse.watermark.detect` on the green-list samples).

    uv run python experiments/bench_watermark.py               # batch 1024, median of 3 timed runs
    uv run python experiments/bench_watermark.py --batch 256

Each sampler runs once untimed (compiling), then `--repeats` timed runs of the same program. The Gumbel rule is
refused from BOS in a study (one sequence N times); here its cost is what matters, and it is the same from a
prompt. Prints tokens/s and the ratio to plain sampling.
"""

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

parser = argparse.ArgumentParser()
parser.add_argument("--batch", type=int, default=1024)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from collapse import sample as sampler  # noqa: E402
from collapse import watermark  # noqa: E402
from collapse.data import GrammarConfig  # noqa: E402
from collapse.devices import make_layout  # noqa: E402
from collapse.families import TinyConfig  # noqa: E402
from collapse.families.transformer import TransformerFamily  # noqa: E402
from collapse.watermark import Watermark  # noqa: E402

V, T, B = GrammarConfig().vocab_size, GrammarConfig().seq_len, args.batch
layout = make_layout(1, {"--batch": B})
family = TransformerFamily(TinyConfig(), V, layout)
params = family.init(jax.random.split(jax.random.key(0), 1))
prompt = jnp.full((1, B, 1), V, jnp.int32)
key_data = jax.random.key_data(jax.random.split(jax.random.key(1), 1))
print(f"{jax.device_count()} x {jax.devices()[0].device_kind}, jax {jax.__version__}; model=tiny, V={V}, T={T}, "
      f"batch {B}, median of {args.repeats}")
print(f"{'sampling':<22} {'tokens/s':>10} {'vs plain':>9}")
plain, outputs = None, {}
for name, mark in (("plain", Watermark()), ("green_list (context 2)", Watermark("green_list")),
                   ("gumbel (context 2)", Watermark("gumbel"))):
    def run():
        return sampler.generate(family.graphdef, layout, params, prompt, key_data, jnp.float32(1.0), jnp.int32(0),
                                jnp.float32(1.0), T, V, mark).block_until_ready()

    outputs[mark.scheme] = run()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    rate = B * T / float(np.median(times))
    plain = plain or rate
    print(f"{name:<22} {rate:>10.0f} {rate / plain:>9.2f}")

tokens = np.asarray(outputs["green_list"][0])
for attempt in ("first call, compiling included", "again"):
    t0 = time.perf_counter()
    d = watermark.detect(Watermark("green_list"), tokens, V)
    t = time.perf_counter() - t0
    print(f"detection (green_list, deduplicated): {tokens.size} tokens, {d.scored} scored, log10 p {d.log10_p:.0f}, "
          f"{tokens.size / t:.0f} tokens/s ({attempt})")
