"""Hugging Face model folders (`config.json`, `model.safetensors`, the tokenizer): read a pretrained GPT-2 or
OPT checkpoint into our transformer's parameters, and write a model of ours as such a folder.

`architecture` turns a folder's config.json into our `TransformerConfig` fields (a configuration we cannot run
exactly is refused, naming its key); `read_params` maps the tensors onto our parameter tree (`_MAPS`: per
model type, each of our parameters and the tensors it comes from); `write_folder` is the inverse. GPT-2's
Conv1D weights are already [in, out] and its c_attn is our fused q|k|v; OPT's nn.Linear weights are [out, in],
its q, k and v separate. Tensors are read with the `safetensors` package as NumPy arrays (never torch).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from collapse.errors import DataError
from collapse.files import load_json

FILES = ("config.json", "model.safetensors")
EPSILON = 1e-5  # our LayerNorms'
# Keys a config.json may set only to these values (else the model is not the one we compute).
_FIXED = {
    "gpt2": {"scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False, "add_cross_attention": False,
             "scale_attn_weights": True},
    "opt": {"do_layer_norm_before": True, "enable_bias": True, "layer_norm_elementwise_affine": True},
}
_ACTIVATIONS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}


def digest(path: str | Path) -> str:
    """SHA-256 over the folder's config.json and model.safetensors (what fixes the parameters); hashed once per
    version of the files (their size and modification time), since every composition of a config resolves it."""
    stamps = []
    for name in FILES:
        file = Path(path) / name
        if not file.is_file():
            raise DataError(file, "missing: a pretrained folder holds config.json and model.safetensors")
        stat = file.stat()
        stamps.append((str(file.resolve()), stat.st_size, stat.st_mtime_ns))
    return _digest(tuple(stamps))


@functools.lru_cache(maxsize=16)
def _digest(stamps: tuple) -> str:
    h = hashlib.sha256()
    for file, _, _ in stamps:
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_config(path: str | Path) -> dict:
    return load_json(Path(path) / "config.json")


def _refuse(path: Path, key: str, why: str) -> DataError:
    return DataError(Path(path) / "config.json", f"{key}: {why}")


def architecture(hf: dict, path: str | Path = ".") -> tuple[dict, int]:
    """Our TransformerConfig fields and the vocabulary size of the config.json `hf` (of the folder `path`)."""
    kind = hf.get("model_type")
    if kind not in _FIXED:
        raise _refuse(path, "model_type", f"{kind!r} is not supported (supported: {', '.join(_FIXED)})")
    for key, value in _FIXED[kind].items():
        if hf.get(key, value) != value:
            raise _refuse(path, key, f"{hf[key]!r} is not supported (only {value!r})")
    need = ("n_embd", "n_layer", "n_head", "n_positions") if kind == "gpt2" else (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim", "max_position_embeddings")
    for key in (*need, "vocab_size"):
        if key not in hf:
            raise _refuse(path, key, "missing")
    if kind == "gpt2":
        d, layers, heads = hf["n_embd"], hf["n_layer"], hf["n_head"]
        d_ff, context, eps = hf.get("n_inner") or 4 * d, hf["n_positions"], hf.get("layer_norm_epsilon", EPSILON)
        act, offset = hf.get("activation_function", "gelu_new"), 0
    else:
        d, layers, heads, d_ff = hf["hidden_size"], hf["num_hidden_layers"], hf["num_attention_heads"], hf["ffn_dim"]
        context, eps, act, offset = hf["max_position_embeddings"], EPSILON, hf.get("activation_function", "relu"), 2
        if hf.get("word_embed_proj_dim", d) != d:
            raise _refuse(path, "word_embed_proj_dim", f"{hf['word_embed_proj_dim']} != hidden_size {d} (OPT-350m's "
                          "project_in/project_out) is not supported")
    if act not in _ACTIVATIONS:
        raise _refuse(path, "activation_function", f"{act!r} is not supported (supported: {', '.join(_ACTIVATIONS)})")
    if eps != EPSILON:
        raise _refuse(path, "layer_norm_epsilon", f"{eps} is not supported (our LayerNorms use {EPSILON})")
    native = bool(hf.get("collapse_bos_never_predicted"))  # a model of ours, written by `write_folder`
    vocab = hf["vocab_size"] - native
    bos = -1 if native else hf.get("bos_token_id")
    if not native and (bos is None or not 0 <= bos < vocab):
        raise _refuse(path, "bos_token_id", f"{bos!r} is not a token of the {vocab}-token vocabulary")
    fields = dict(d_model=d, n_layers=layers, n_heads=heads, d_ff=d_ff, context=context, activation=_ACTIVATIONS[act],
                  tied_head=bool(hf.get("tie_word_embeddings", True)), bos_token=bos, position_offset=offset)
    return fields, vocab


def resolve(cfg):
    """`cfg` with its pretrained model's sizes, vocabulary and digest read from model.path, and its text data
    tokenized by the checkpoint's tokenizer; any other config unchanged. A folder whose digest differs from a
    recorded model.sha256 (a resumed study's) is refused."""
    import dataclasses

    from collapse.data import TokenizedConfig
    from collapse.families import PretrainedConfig

    m = cfg.model
    if not isinstance(m, PretrainedConfig) or not m.path:
        return cfg
    fields, vocab = architecture(read_config(m.path), m.path)
    sha = digest(m.path)
    if m.sha256 and m.sha256 != sha:
        raise DataError(Path(m.path) / "model.safetensors", f"digest {sha[:16]}... differs from model.sha256 "
                        f"{m.sha256[:16]}... (the checkpoint this study started from)")
    data = cfg.data
    if isinstance(data, TokenizedConfig):
        data = dataclasses.replace(data, tokenizer="pretrained", tokenizer_path=m.path)
    return dataclasses.replace(cfg, model=dataclasses.replace(m, **fields, vocab=vocab, sha256=sha), data=data)


# ------------------------------------------------------------------------------------------ the name maps


def _maps(kind: str, layers: int, tied: bool) -> list[tuple[tuple, tuple[str, ...], str]]:
    """(our parameter's path, its tensors' names, how: copy | t (transpose) | qkv (OPT's three, transposed and
    joined)) for every parameter of a model of `kind`."""
    if kind == "gpt2":
        top = [(("tok_embed", "embedding"), ("wte.weight",), "copy"), (("pos_embed", "embedding"), ("wpe.weight",), "copy"),
               (("ln_f", "scale"), ("ln_f.weight",), "copy"), (("ln_f", "bias"), ("ln_f.bias",), "copy")]
        per = [("ln1", "ln_1", "copy"), ("attn.qkv", "attn.c_attn", "copy"), ("attn.out", "attn.c_proj", "copy"),
               ("ln2", "ln_2", "copy"), ("up", "mlp.c_fc", "copy"), ("down", "mlp.c_proj", "copy")]
        layer = "h.{i}."
    else:
        top = [(("tok_embed", "embedding"), ("embed_tokens.weight",), "copy"),
               (("pos_embed", "embedding"), ("embed_positions.weight",), "copy"),
               (("ln_f", "scale"), ("final_layer_norm.weight",), "copy"),
               (("ln_f", "bias"), ("final_layer_norm.bias",), "copy")]
        per = [("ln1", "self_attn_layer_norm", "copy"), ("attn.qkv", "self_attn.{}_proj", "qkv"),
               ("attn.out", "self_attn.out_proj", "t"), ("ln2", "final_layer_norm", "copy"), ("up", "fc1", "t"),
               ("down", "fc2", "t")]
        layer = "layers.{i}."
    out = list(top)
    for i in range(layers):
        for ours, theirs, how in per:
            path = ("blocks", i, *ours.split("."))
            names = [layer.format(i=i) + theirs.format(p) for p in "qkv"] if how == "qkv" else [layer.format(i=i) + theirs]
            is_norm = ours.startswith("ln")
            out.append(((*path, "scale" if is_norm else "kernel"), tuple(f"{n}.weight" for n in names), how))
            out.append(((*path, "bias"), tuple(f"{n}.bias" for n in names), "qkv_bias" if how == "qkv" else "copy"))
    if not tied:
        out.append((("head", "kernel"), ("lm_head.weight",), "t"))
    return out


_PREFIXES = ("transformer.", "model.decoder.", "decoder.", "model.")


def _strip(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix) and not name.startswith("lm_head"):
            return name[len(prefix):]
    return name


def read_params(path: str | Path, hf: dict, pure: dict) -> dict:
    """`pure` (our parameter tree as a pure dict of arrays, one model) filled from the folder's model.safetensors;
    a missing tensor or one of the wrong shape is refused naming it. Upcast to float32."""
    from safetensors.numpy import load_file

    file = Path(path) / "model.safetensors"
    try:
        tensors = {_strip(k): v for k, v in load_file(str(file)).items()}
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise DataError(file, f"unreadable ({type(e).__name__}: {e})") from None
    out = _layered(_copy_tree(pure), _layers(hf))
    native = bool(hf.get("collapse_bos_never_predicted"))
    for ours, names, how in _maps(hf["model_type"], _layers(hf), "head" not in pure):
        for name in names:
            if name not in tensors:
                raise DataError(file, f"no tensor {name}")
        parts = [np.asarray(tensors[n], np.float32) for n in names]
        value = {"copy": lambda: parts[0], "t": lambda: parts[0].T, "qkv": lambda: np.concatenate([p.T for p in parts], 1),
                 "qkv_bias": lambda: np.concatenate(parts)}[how]()
        if ours == ("head", "kernel") and native:
            value = value[:, :-1]  # the BOS column a model of ours never predicts
        _set(out, ours, value, file, names[0])
    return _restack(out, pure)


def _layers(hf: dict) -> int:
    return hf.get("n_layer") or hf["num_hidden_layers"]


def _layered(pure: dict, layers: int) -> dict:
    """`pure` with its blocks one per layer ({0: ..., 1: ...}), also where they are stacked (model.scan_layers)."""
    blocks = pure.get("blocks", {})
    if all(isinstance(k, int) for k in blocks):
        return pure
    import jax

    return {**pure, "blocks": {i: jax.tree.map(lambda x: x[i], blocks) for i in range(layers)}}  # noqa: B023


def _restack(layered: dict, like: dict) -> dict:
    """`layered`'s blocks in the layout of `like` (stacked again where `like`'s are)."""
    if all(isinstance(k, int) for k in like.get("blocks", {})):
        return layered
    import jax

    blocks = [layered["blocks"][i] for i in sorted(layered["blocks"])]
    return {**layered, "blocks": jax.tree.map(lambda *xs: np.stack(xs), *blocks)}


def _copy_tree(tree):
    return {k: _copy_tree(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


def _set(tree: dict, path: tuple, value: np.ndarray, file: Path, name: str) -> None:
    node = tree
    for key in path[:-1]:
        node = node[key]
    want = tuple(node[path[-1]].shape)
    if value.shape != want:
        raise DataError(file, f"tensor {name} has shape {value.shape}, config.json implies {want}")
    node[path[-1]] = value


def _get(tree: dict, path: tuple):
    for key in path:
        tree = tree[key]
    return np.asarray(tree, np.float32)


# ----------------------------------------------------------------------------------------------- export


def hf_config(cfg, vocab_size: int) -> dict:
    """config.json for our `TransformerConfig` `cfg` predicting `vocab_size` tokens: GPT-2's keys, or OPT's for a
    model read from an OPT folder (position_offset 2)."""
    native = cfg.bos_token < 0
    rows = vocab_size + native
    bos = vocab_size if native else cfg.bos_token
    tied = cfg.tied_head and not native  # a tied model of ours is written untied: its head's BOS row must be zero
    common = {"vocab_size": rows, "bos_token_id": bos, "eos_token_id": bos, "tie_word_embeddings": tied,
              "torch_dtype": "float32", **({"collapse_bos_never_predicted": True} if native else {})}
    act = {"gelu": "gelu_new", "relu": "relu"}[cfg.activation]
    if cfg.position_offset == 2:
        return {"model_type": "opt", "architectures": ["OPTForCausalLM"], "hidden_size": cfg.d_model,
                "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads, "ffn_dim": cfg.d_ff,
                "max_position_embeddings": cfg.context, "word_embed_proj_dim": cfg.d_model,
                "activation_function": act, "do_layer_norm_before": True, "enable_bias": True,
                "layer_norm_elementwise_affine": True, "pad_token_id": 1, **common}
    if cfg.position_offset:
        raise ValueError(f"no Hugging Face model type reads positions from row {cfg.position_offset}")
    return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": cfg.d_model,
            "n_layer": cfg.n_layers, "n_head": cfg.n_heads, "n_inner": cfg.d_ff, "n_positions": cfg.context,
            "n_ctx": cfg.context, "activation_function": act, "layer_norm_epsilon": EPSILON, "resid_pdrop": 0.0,
            "embd_pdrop": 0.0, "attn_pdrop": 0.0, **common}


def tensors_of(pure: dict, hf: dict) -> dict[str, np.ndarray]:
    """Our parameter tree (one model, a pure dict) as the folder's named tensors (the inverse of `read_params`)."""
    out = {}
    native = bool(hf.get("collapse_bos_never_predicted"))
    D = hf.get("n_embd") or hf["hidden_size"]
    pure = _layered(pure, _layers(hf))
    if "head" not in pure and not hf["tie_word_embeddings"]:  # tied, written untied: the head is the embedding's
        pure = {**pure, "head": {"kernel": np.asarray(pure["tok_embed"]["embedding"])[:-1].T}}  # rows but BOS's
    for ours, names, how in _maps(hf["model_type"], _layers(hf), hf["tie_word_embeddings"]):
        value = _get(pure, ours)
        if ours == ("head", "kernel") and native:
            value = np.concatenate([value, np.zeros((len(value), 1), np.float32)], 1)  # BOS: never predicted
        if how == "t":
            out[names[0]] = value.T
        elif how in ("qkv", "qkv_bias"):
            for n, part in zip(names, np.split(value, [D, 2 * D], axis=-1)):
                out[n] = part.T if how == "qkv" else part
        else:
            out[names[0]] = value
    prefix = "model.decoder." if hf["model_type"] == "opt" else "transformer."
    return {(n if n.startswith("lm_head") else prefix + n): np.ascontiguousarray(v) for n, v in out.items()}


def write_folder(out: str | Path, pure: dict, cfg, vocab_size: int, tokenizer=None) -> Path:
    """A Hugging Face folder holding our model: config.json, model.safetensors (float32) and, if given, the
    tokenizer (its `save_pretrained_files(out)`)."""
    from safetensors.numpy import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hf = hf_config(cfg, vocab_size)
    save_file(tensors_of(pure, hf), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained_files(out)
    return out
