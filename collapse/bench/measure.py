"""What `collapse-bench` measures: the shapes (`SHAPES`), our training and sampling throughput (`measure_ours`),
the PyTorch + transformers reference cycle in its own process (`reference`), and the machine's ceilings (large
matmul FLOP/s, copy bandwidth) that utilisation figures divide by."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from collapse import devices, train
from collapse import sample as sampler
from collapse.config import TrainConfig, schemas
from collapse.families import TransformerConfig
from collapse.families.transformer import TransformerFamily

V = 256  # byte vocabulary
BATCH = {"tiny": 64, "small": 32, "gpt2_small": 32}  # training batch per model option (the reference's too)


def model_option(name: str) -> TransformerConfig:
    """The config `collapse model=<name>` composes: the option's schema, whose defaults are the model's shape."""
    return schemas("model", TransformerConfig)[name]()


@dataclass(frozen=True)
class Shape:
    name: str
    cfg: TransformerConfig  # the model option
    batch: int

    @property
    def d_model(self) -> int:
        return self.cfg.d_model

    @property
    def layers(self) -> int:
        return self.cfg.n_layers

    @property
    def heads(self) -> int:
        return self.cfg.n_heads

    @property
    def context(self) -> int:
        return self.cfg.context

    def model(self, dtype: str = "float32") -> TransformerConfig:
        """The model option at the benchmark's compute dtype."""
        return dataclasses.replace(self.cfg, dtype=dtype)


SHAPES = {name: Shape(name, model_option(name), batch) for name, batch in BATCH.items()}


def corpus(path: str | None, n: int = 1_000_000) -> np.ndarray:
    if path:
        return np.frombuffer(Path(path).read_bytes(), np.uint8).astype(np.int32)
    return np.random.default_rng(0).integers(0, V, n).astype(np.int32)


def _time(fn, repeats: int) -> float:
    """Median wall seconds of `fn()` (which must block until its results are ready)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def params_count(family: TransformerFamily) -> tuple[int, int]:
    """(all parameters, parameters outside the embeddings) of one replicate."""
    shapes = jax.tree.leaves(family.abstract(1))
    total = sum(int(np.prod(s.shape[1:])) for s in shapes)
    embed = (family.vocab_size + 1 + family.cfg.context) * family.cfg.d_model  # token + position tables
    return total, total - embed


def train_flops_per_token(shape: Shape, non_embedding: int) -> float:
    """6 N (matmul parameters incl. the output head) + 12 L T d (attention scores and values), fwd + bwd."""
    return 6 * non_embedding + 12 * shape.layers * shape.context * shape.d_model


def measure_ours(shape: Shape, data: np.ndarray, args, replicates: int = 1, dtype: str = "float32") -> dict:
    """Steady-state training and sampling throughput of R replicates of `shape` (compile time separate)."""
    layout = devices.make_layout(replicates, {"batch": shape.batch, "--gen-batch": args.gen_batch})
    family = TransformerFamily(shape.model(dtype), V, layout)
    keys = jax.random.split(jax.random.key(0), replicates)
    params = family.init(keys)
    cfg = TrainConfig(batch_size=shape.batch, log_every=args.steps, lr=3e-4, warmup_fraction=0.0)
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(data) - shape.context - 1, (replicates, args.steps, shape.batch))
    batches = layout.put(data[starts[..., None] + np.arange(shape.context)], layout.batch(2))
    state = layout.put(jax.vmap(lambda p: train.init_state(p, cfg))(params), layout.params())
    active = jnp.ones(args.steps, bool)

    def chunk():
        nonlocal state
        state, loss = train.train_chunk(family.graphdef, cfg, layout, state, batches, active, jnp.int32(10**6))
        loss.block_until_ready()

    t0 = time.perf_counter()
    chunk()
    compile_train = time.perf_counter() - t0
    train_s = _time(chunk, args.repeats)
    params = state.params

    prompts = layout.put(np.concatenate([np.full((replicates, args.gen_batch, 1), V, np.int32),
                                         rng.integers(0, V, (replicates, args.gen_batch, 1)).astype(np.int32)], 2),
                         layout.batch(1))
    key_data = layout.put(jax.random.key_data(jax.random.split(jax.random.key(1), replicates)), layout.params())

    def gen():
        out = sampler.generate(family.graphdef, layout, params, prompts, key_data, jnp.float32(1.0),
                               jnp.int32(args.top_k), jnp.float32(1.0), args.gen_len, min(1024, V))
        out.block_until_ready()

    t0 = time.perf_counter()
    gen()
    compile_sample = time.perf_counter() - t0
    sample_s = _time(gen, args.repeats)
    total, non_embed = params_count(family)
    return {
        "replicates": replicates, "dtype": dtype, "params": total,
        "train_tokens_per_s": replicates * args.steps * shape.batch * shape.context / train_s,
        "sample_tokens_per_s": replicates * args.gen_batch * args.gen_len / sample_s,
        "compile_s": compile_train + compile_sample,
        "train_flops_per_token": train_flops_per_token(shape, non_embed),
        "param_bytes": total * 4,
    }


def reference(shape: Shape, args) -> dict | None:
    """One run of the reference script `args.hf_script` in `args.hf_python`, or None if it cannot run."""
    script = Path(args.hf_script)
    if not args.hf_python or not script.exists():
        return None
    cmd = [args.hf_python, str(script), "--d-model", str(shape.d_model), "--layers", str(shape.layers),
           "--heads", str(shape.heads), "--seq-len", str(shape.context), "--batch", str(shape.batch),
           "--steps", str(args.hf_steps), "--gen-batch", str(args.gen_batch), "--gen-len", str(args.gen_len),
           "--top-k", str(args.top_k)]
    if args.text:
        cmd += ["--text", args.text]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        print(f"reference failed: {result.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_ceilings(dtype=jnp.float32) -> dict:
    """Large-matmul FLOP/s of the default device (on a CPU it uses every core) and the copy bandwidth (bytes
    read + written per second) of all local devices together."""
    n = 4096 if jax.default_backend() != "cpu" else 2048
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    t = _time(lambda: mm(a).block_until_ready(), 5)
    # 256 MiB, spread over the local devices (a CPU host split into one device per core: every core copies)
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()), ("d",))
    x = jax.device_put(jnp.ones((64 * 2**20,), jnp.float32), jax.NamedSharding(mesh, jax.P("d")))
    cp = jax.jit(lambda y: y * 1.0001)
    cp(x).block_until_ready()
    tc = _time(lambda: cp(x).block_until_ready(), 5)
    return {"matmul_flops_per_s": 2 * n**3 / t, "copy_bytes_per_s": 2 * x.nbytes / tc, "matmul_n": n}


def sampling_bytes_per_token(shape: Shape, ours: dict, gen_batch: int, gen_len: int) -> float:
    """Bytes a decode step must read, per generated token: the weights once per step (shared by the batch)
    plus each sequence's KV cache (2 L d floats per cached position, on average half the length)."""
    kv = 2 * shape.layers * shape.d_model * 4 * (1 + gen_len / 2)
    return ours["param_bytes"] / gen_batch + kv
