"""`collapse-bench`: throughput of one model-collapse generation cycle, against PyTorch + transformers.

    uv run collapse-bench                                  # ours only, unless the reference can run
    uv run collapse-bench --hf-python /path/to/venv/bin/python --text ../shared/data/tinyshakespeare.txt

For each shape (a transformer `model` option of conf/model/ with its training batch, `BATCH`; byte
vocabulary) it measures, after compilation:
- training tokens/s (AdamW steps on batches of context-length sequences),
- sampling tokens/s (KV-cache decoding of `gen_len` new tokens for `gen_batch` one-token prompts),
- a generation cycle: seconds to train on `cycle_tokens` tokens and then sample as many,
and, in the same job, the reference cycle `--hf-script` (default ../shared/bench/hf_baseline.py from the
working directory; eager PyTorch, `model.generate`) on the same shapes, alternating runs, reporting ours /
reference per figure. It also measures this machine's large-matmul FLOP/s and copy bandwidth, and reports
training model-FLOP utilisation and sampling bytes/s against the bound of reading weights + KV cache once
per step; and the throughput of R = 1, 8, 32 tiny replicates trained in one vmapped program against R runs
one after another.
Writes `--out` (default results/benchmark.json under the working directory) and prints one table. Needs only
jax, flax and optax (+ PyYAML, a flax dependency): no Hydra, so it runs on a bare device image.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import jax
import numpy as np

from collapse import devices
from collapse.bench.measure import SHAPES, corpus, machine_ceilings, measure_ours, reference, sampling_bytes_per_token

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="collapse-bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="tiny,small")
    ap.add_argument("--text", default=None, help="UTF-8 file whose bytes are the tokens (random tokens if omitted)")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per timed training run")
    ap.add_argument("--hf-steps", type=int, default=20)
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--gen-len", type=int, default=127)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of ours per round (median)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of ours and the reference")
    ap.add_argument("--cycle-tokens", type=int, default=2**20, help="tokens trained and sampled in one cycle")
    ap.add_argument("--replicates", default="1,8,32", help="replicate counts for the scaling figure ('' = skip)")
    ap.add_argument("--dtype", default="float32", help="compute dtype of our model (bfloat16 on GPU/TPU)")
    ap.add_argument("--cpu-devices", type=int, default=0,
                    help="XLA devices to split a CPU host into (0 = as `collapse` does: one per core)")
    ap.add_argument("--hf-python", default=os.environ.get("COLLAPSE_HF_PYTHON", ""),
                    help="a Python with torch + transformers for the reference (default: $COLLAPSE_HF_PYTHON, "
                         "else this one if it has them)")
    ap.add_argument("--hf-script", default="../shared/bench/hf_baseline.py",
                    help="the reference script (default: relative to the working directory)")
    ap.add_argument("--out", default="results/benchmark.json",
                    help="the JSON report (default: relative to the working directory)")
    ap.add_argument("--no-reference", action="store_true",
                    help="ours only (e.g. on a GPU: the reference is CPU-only)")
    args = ap.parse_args(argv)
    script_found = Path(args.hf_script).is_file()
    if args.no_reference:
        args.hf_python = ""
    elif args.hf_python and not script_found:  # a reference was asked for: say what is missing
        ap.error(f"--hf-script {args.hf_script} not found (from {Path.cwd()}): give the reference script's "
                 "path, or --no-reference")
    elif not args.hf_python:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401

            args.hf_python = sys.executable
        except ImportError:
            pass

    batches = {f"{name} batch": SHAPES[name].batch for name in args.shapes.split(",")}
    devices.use_cpu_devices(args.cpu_devices, 1, {**batches, "--gen-batch": args.gen_batch})
    data = corpus(args.text)
    ceilings = machine_ceilings()
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "device": jax.devices()[0].device_kind,
              "backend": jax.default_backend(), "devices": jax.device_count(), "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "python": platform.python_version(), "jax": jax.__version__,
              "flax": __import__("flax").__version__, "args": vars(args), "ceilings": ceilings, "shapes": {}}
    reference_ok = bool(args.hf_python) and script_found
    if not reference_ok:
        why = (f"script {args.hf_script} not found (--hf-script)" if args.hf_python
               else "PyTorch + transformers not available (--hf-python)" if not args.no_reference
               else "turned off (--no-reference)")
        print(f"reference: {why}; reporting ours only")
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        ours_runs, ref_runs = [], []
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
            ours_runs.append(measure_ours(shape, data, args, dtype=args.dtype))
            ref = reference(shape, args) if reference_ok else None
            if ref:
                ref_runs.append(ref)
        ours = {k: float(np.median([r[k] for r in ours_runs])) for k in ours_runs[0] if k != "dtype"}
        entry = {"ours": ours}
        cycle = lambda r: args.cycle_tokens / r["train_tokens_per_s"] + args.cycle_tokens / r["sample_tokens_per_s"]  # noqa: E731
        ours["cycle_s"] = cycle(ours)
        ours["train_mfu"] = ours["train_tokens_per_s"] * ours["train_flops_per_token"] / ceilings["matmul_flops_per_s"]
        per_token = sampling_bytes_per_token(shape, ours, args.gen_batch, args.gen_len)
        ours["sample_bytes_per_s"] = ours["sample_tokens_per_s"] * per_token
        ours["sample_bandwidth_fraction"] = ours["sample_bytes_per_s"] / ceilings["copy_bytes_per_s"]
        if ref_runs:
            ref = {k: float(np.median([r[k] for r in ref_runs])) for k in ("train_tokens_per_s", "sample_tokens_per_s")}
            ref["cycle_s"] = cycle(ref)
            ref["torch"], ref["threads"] = ref_runs[0]["torch"], ref_runs[0]["threads"]
            entry["reference"] = ref
            entry["ratio"] = {"train": ours["train_tokens_per_s"] / ref["train_tokens_per_s"],
                              "sample": ours["sample_tokens_per_s"] / ref["sample_tokens_per_s"],
                              "cycle": ref["cycle_s"] / ours["cycle_s"]}
        report["shapes"][name] = entry
    if args.replicates:
        tiny, scaling = SHAPES["tiny"], {}
        for R in [int(r) for r in args.replicates.split(",")]:
            scaling[R] = measure_ours(tiny, data, argparse.Namespace(**{**vars(args), "repeats": 2}), replicates=R)
        base = scaling[min(scaling)]
        report["replicate_scaling"] = {
            R: {"train_tokens_per_s": m["train_tokens_per_s"], "sample_tokens_per_s": m["sample_tokens_per_s"],
                "train_speedup_vs_sequential": m["train_tokens_per_s"] / base["train_tokens_per_s"],
                "sample_speedup_vs_sequential": m["sample_tokens_per_s"] / base["sample_tokens_per_s"]}
            for R, m in scaling.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def print_table(report: dict) -> None:
    print(f"\n{report['device']} ({report['backend']}, {report['devices']} device(s)), jax {report['jax']}, "
          f"{report['date']}")
    c = report["ceilings"]
    print(f"machine: matmul {c['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s, copy {c['copy_bytes_per_s'] / 1e9:.1f} GB/s")
    print(f"{'shape':<11}{'figure':<22}{'ours':>12}{'reference':>12}{'ours/ref':>10}")
    for name, e in report["shapes"].items():
        o, r, q = e["ours"], e.get("reference", {}), e.get("ratio", {})
        rows = [("train tokens/s", o["train_tokens_per_s"], r.get("train_tokens_per_s"), q.get("train")),
                ("sample tokens/s", o["sample_tokens_per_s"], r.get("sample_tokens_per_s"), q.get("sample")),
                ("cycle seconds", o["cycle_s"], r.get("cycle_s"), q.get("cycle")),
                ("train MFU", o["train_mfu"], None, None),
                ("sample BW fraction", o["sample_bandwidth_fraction"], None, None),
                ("compile seconds", o["compile_s"], None, None)]
        for fig, a, b, ratio in rows:
            fb = f"{b:12.4g}" if b is not None else f"{'—':>12}"
            fr = f"{ratio:9.2f}x" if ratio is not None else f"{'':>10}"
            print(f"{name:<11}{fig:<22}{a:12.4g}{fb}{fr}")
    for R, m in report.get("replicate_scaling", {}).items():
        print(f"replicates R={R:<3} train {m['train_tokens_per_s']:10.4g} tok/s ({m['train_speedup_vs_sequential']:.1f}x "
              f"sequential)  sample {m['sample_tokens_per_s']:10.4g} tok/s ({m['sample_speedup_vs_sequential']:.1f}x)")


if __name__ == "__main__":
    main()
