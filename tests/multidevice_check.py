"""Run in a subprocess with 4 CPU devices (see test_devices.py): prints how far multi-device training and
sampling are from the single-device result, as JSON."""

import json

import jax
import numpy as np

from collapse import devices
from collapse.config import SampleConfig, TrainConfig
from collapse.families.transformer import TransformerFamily
from tests.helpers import TINY_MODEL

V, T = 7, 16
phase = np.random.default_rng(0).integers(0, V, 96)
data_NT = ((phase[:, None] + np.arange(T)[None]) % V).astype(np.int32)
cfg = TrainConfig(batch_size=16, epochs=2, log_every=4)
keys = jax.random.split(jax.random.key(0), 4)
out = {"devices": jax.device_count()}

for name, R in (("by_batch", 1), ("by_replicate", 4)):
    single = TransformerFamily(TINY_MODEL, V, devices.single())
    spread = TransformerFamily(TINY_MODEL, V, devices.make_layout(R, {"train.batch_size": 16}))
    out[f"{name}_layout"] = "replicate" if spread.layout.by_replicate else "batch"
    data = np.stack([np.roll(data_NT, r, axis=0) for r in range(R)])
    rngs = lambda: [np.random.default_rng(r) for r in range(R)]  # noqa: E731
    params_a, loss_a = single.fit(single.init(keys[:R]), data, rngs(), cfg)
    params_b, loss_b = spread.fit(spread.init(keys[:R]), data, rngs(), cfg)
    out[f"{name}_param_sharding"] = str(jax.tree.leaves(params_b)[0].sharding.spec)
    out[f"{name}_loss_rel"] = float(np.max(np.abs(loss_a - loss_b) / np.abs(loss_a)))
    prompts = np.zeros((R, 32, 0), np.int32)
    sample_keys = jax.random.split(jax.random.key(1), R)
    sa = single.sample(params_a, prompts, sample_keys, SampleConfig(batch_size=32), T)
    sb = spread.sample(params_a, prompts, sample_keys, SampleConfig(batch_size=32), T)
    out[f"{name}_sample_mismatch"] = float(np.mean(sa != sb))
    lp_a = single.logprob(params_a, data[:, :32])
    lp_b = spread.logprob(params_a, data[:, :32])
    out[f"{name}_logprob_rel"] = float(np.max(np.abs(lp_a - lp_b) / np.abs(lp_a)))
print(json.dumps(out))
