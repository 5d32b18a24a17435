"""model=pretrained (collapse.pretrained): tiny random GPT-2 and OPT folders written here with numpy + safetensors
(and a tokenizer trained here) load into our transformer, whose logits and KV-cache decode equal an independent
NumPy float64 forward pass; export → load is exact; a configuration we cannot compute is refused naming its key;
a study fine-tunes from the checkpoint."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import save_file

from collapse import pretrained
from collapse.config import Config, TrainConfig
from collapse.data import TextConfig
from collapse.errors import ConfigError, DataError
from collapse.families import PretrainedConfig
from collapse.families.transformer import TransformerFamily
from collapse.model import Transformer
from collapse.validate import validate
from tests.helpers import write_corpus

V, D, L, A, F, P = 61, 16, 2, 4, 48, 24  # vocabulary, width, layers, heads, MLP width, positions


def _random(shape, rng, scale=0.3, around=0.0):
    return (around + scale * rng.standard_normal(shape)).astype(np.float32)


def gpt2_folder(path, seed=0, tied=True, positions=P, **config):
    """A random GPT-2 in a Hugging Face folder (Conv1D weights [in, out], fused c_attn, transformer. prefix)."""
    rng = np.random.default_rng(seed)
    t = {"wte.weight": _random((V, D), rng), "wpe.weight": _random((positions, D), rng),
         "ln_f.weight": _random(D, rng, 0.1, 1.0), "ln_f.bias": _random(D, rng, 0.1)}
    for i in range(L):
        for name, shape in (("ln_1", None), ("attn.c_attn", (D, 3 * D)), ("attn.c_proj", (D, D)), ("ln_2", None),
                            ("mlp.c_fc", (D, F)), ("mlp.c_proj", (F, D))):
            out = shape[1] if shape else D
            t[f"h.{i}.{name}.weight"] = _random(shape, rng) if shape else _random(D, rng, 0.1, 1.0)
            t[f"h.{i}.{name}.bias"] = _random(out, rng, 0.1)
        t[f"h.{i}.attn.bias"] = np.tril(np.ones((positions, positions), np.float32))  # a mask buffer: ignored
    if not tied:
        t["lm_head.weight"] = _random((V, D), rng)
    cfg = {"model_type": "gpt2", "n_embd": D, "n_layer": L, "n_head": A, "n_inner": F, "n_positions": positions,
           "vocab_size": V, "bos_token_id": V - 1, "eos_token_id": V - 1, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "tie_word_embeddings": tied, **config}
    return _write(path, {(k if k.startswith("lm_head") else "transformer." + k): v for k, v in t.items()}, cfg)


def opt_folder(path, seed=0):
    """A random OPT (nn.Linear weights [out, in], separate q/k/v, positions offset by 2)."""
    rng = np.random.default_rng(seed)
    t = {"embed_tokens.weight": _random((V, D), rng), "embed_positions.weight": _random((P + 2, D), rng),
         "final_layer_norm.weight": _random(D, rng, 0.1, 1.0), "final_layer_norm.bias": _random(D, rng, 0.1)}
    for i in range(L):
        for name, (o, n) in (("self_attn.q_proj", (D, D)), ("self_attn.k_proj", (D, D)), ("self_attn.v_proj", (D, D)),
                             ("self_attn.out_proj", (D, D)), ("fc1", (F, D)), ("fc2", (D, F))):
            t[f"layers.{i}.{name}.weight"], t[f"layers.{i}.{name}.bias"] = _random((o, n), rng), _random(o, rng, 0.1)
        for name in ("self_attn_layer_norm", "final_layer_norm"):
            t[f"layers.{i}.{name}.weight"], t[f"layers.{i}.{name}.bias"] = _random(D, rng, .1, 1.), _random(D, rng, .1)
    cfg = {"model_type": "opt", "hidden_size": D, "num_hidden_layers": L, "num_attention_heads": A, "ffn_dim": F,
           "max_position_embeddings": P, "vocab_size": V, "bos_token_id": 2, "eos_token_id": 2,
           "activation_function": "relu", "do_layer_norm_before": True, "word_embed_proj_dim": D}
    return _write(path, {"model.decoder." + k: v for k, v in t.items()}, cfg)


def _write(path, tensors, cfg):
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(cfg))
    return path


# ---------------------------------------------------------------------- the reference: NumPy, float64


def _ln(x, w, b):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def _attend(q, k, v):
    T = q.shape[0]
    q, k, v = (x.reshape(T, A, D // A).transpose(1, 0, 2) for x in (q, k, v))
    s = q @ k.transpose(0, 2, 1) / np.sqrt(D // A) + np.triu(np.full((T, T), -np.inf), 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    return ((p / p.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(T, D)


def reference_logits(folder, ids):
    """Next-token logits [T, V] of the model in `folder` for `ids`, computed in float64 from its tensors."""
    from safetensors.numpy import load_file

    cfg = json.loads((folder / "config.json").read_text())
    t = {k.removeprefix("transformer.").removeprefix("model.decoder."): v.astype(np.float64)
         for k, v in load_file(str(folder / "model.safetensors")).items()}
    T = len(ids)
    if cfg["model_type"] == "gpt2":
        x = t["wte.weight"][ids] + t["wpe.weight"][:T]
        gelu = lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))  # noqa: E731
        for i in range(L):
            p = lambda n: (t[f"h.{i}.{n}.weight"], t[f"h.{i}.{n}.bias"])  # noqa: E731, B023
            h = _ln(x, *p("ln_1"))
            qkv = h @ p("attn.c_attn")[0] + p("attn.c_attn")[1]
            x = x + _attend(*np.split(qkv, 3, axis=-1)) @ p("attn.c_proj")[0] + p("attn.c_proj")[1]
            h = gelu(_ln(x, *p("ln_2")) @ p("mlp.c_fc")[0] + p("mlp.c_fc")[1])
            x = x + h @ p("mlp.c_proj")[0] + p("mlp.c_proj")[1]
        head = t.get("lm_head.weight", t["wte.weight"])
        return _ln(x, t["ln_f.weight"], t["ln_f.bias"]) @ head.T
    x = t["embed_tokens.weight"][ids] + t["embed_positions.weight"][2:T + 2]
    for i in range(L):
        p = lambda n: (t[f"layers.{i}.{n}.weight"], t[f"layers.{i}.{n}.bias"])  # noqa: E731, B023
        lin = lambda h, n: h @ p(n)[0].T + p(n)[1]  # noqa: E731, B023
        h = _ln(x, *p("self_attn_layer_norm"))
        x = x + lin(_attend(lin(h, "self_attn.q_proj"), lin(h, "self_attn.k_proj"), lin(h, "self_attn.v_proj")),
                    "self_attn.out_proj")
        x = x + lin(np.maximum(lin(_ln(x, *p("final_layer_norm")), "fc1"), 0), "fc2")
    return _ln(x, t["final_layer_norm.weight"], t["final_layer_norm.bias"]) @ t["embed_tokens.weight"].T


def load(folder):
    """Our model of the folder (through `resolve`, as a study reads it), and its family."""
    cfg = pretrained.resolve(Config(model=PretrainedConfig(path=str(folder)), data=TextConfig(path="x")))
    family = TransformerFamily(cfg.model, cfg.model.vocab)
    params = jax.tree.map(lambda x: x[0], family.pretrained(1))
    return nnx.merge(family.graphdef, params), family, cfg


@pytest.mark.parametrize("make", [gpt2_folder, opt_folder, lambda p: gpt2_folder(p, tied=False)],
                         ids=["gpt2", "opt", "gpt2-untied"])
def test_logits_and_the_cached_decode_equal_a_numpy_forward_pass(make, tmp_path):
    model, family, cfg = load(make(tmp_path / "m"))
    ids = np.r_[family.bos, np.random.default_rng(1).integers(0, V, P - 1)]  # BOS first, as the model reads
    want = reference_logits(tmp_path / "m", ids)
    got = np.asarray(model(jnp.asarray(ids[None]))[0], np.float64)
    # float32 against float64: rounding of order 1e-7 relative per operation over a few dozen operations
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    cache, steps = model.init_cache(1, P), []
    for i in range(P):
        logits, cache = model.decode(jnp.asarray(ids[None, i:i + 1]), cache, i)
        steps.append(np.asarray(logits[0, 0], np.float64))
    np.testing.assert_allclose(np.stack(steps), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert cfg.model.vocab == V and len(cfg.model.sha256) == 64


@pytest.mark.parametrize("source", ["ours", "ours-tied", "gpt2", "opt"])
def test_export_then_load_gives_identical_logits(source, tmp_path):
    """Models of ours (BOS an extra id, never predicted; untied head, or tied and written untied so that the BOS
    row is zero) and loaded GPT-2 / OPT models, written as Hugging Face folders and read back: the same logits."""
    if source.startswith("ours"):  # our own layout
        cfg = PretrainedConfig(d_model=D, n_layers=L, n_heads=A, d_ff=F, context=P, tied_head=source == "ours-tied")
        model = Transformer(cfg, V, rngs=nnx.Rngs(3))
    else:
        model, _, resolved = load((gpt2_folder if source == "gpt2" else opt_folder)(tmp_path / "m"))
        cfg = resolved.model
    pure = nnx.to_pure_dict(nnx.split(model)[1])
    pretrained.write_folder(tmp_path / "out", pure, cfg, V)
    again, family, _ = load(tmp_path / "out")
    assert family.bos == model.bos
    ids = jnp.asarray(np.r_[model.bos, np.arange(P - 1) % V][None])
    if source == "ours-tied":  # the same products, from a [D, V] head instead of the [V + 1, D] embedding
        np.testing.assert_allclose(again(ids), model(ids), rtol=1e-6, atol=1e-6)
        return
    np.testing.assert_array_equal(again(ids), model(ids))


@pytest.mark.parametrize("change, key", [
    (dict(model_type="llama"), "model_type"),
    (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    (dict(reorder_and_upcast_attn=True), "reorder_and_upcast_attn"),
    (dict(activation_function="gelu"), "activation_function"),
    (dict(layer_norm_epsilon=1e-6), "layer_norm_epsilon"),
    (dict(bos_token_id=None), "bos_token_id"),
])
def test_a_configuration_we_cannot_compute_is_refused_naming_its_key(change, key, tmp_path):
    folder = gpt2_folder(tmp_path / "m", **change)
    with pytest.raises(DataError, match=f"config.json: {key}: "):
        load(folder)


def test_opt_with_projections_and_broken_tensors_are_refused(tmp_path):
    folder = opt_folder(tmp_path / "opt")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "word_embed_proj_dim": D // 2}))
    with pytest.raises(DataError, match="word_embed_proj_dim"):
        load(folder)
    folder = gpt2_folder(tmp_path / "gpt2")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "n_inner": F + 1}))
    with pytest.raises(DataError, match=r"tensor h.0.mlp.c_fc.weight has shape \(16, 48\)"):
        load(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="model.safetensors"):
        load(folder)


def test_pretrained_keys_that_would_mean_nothing_are_refused(tmp_path):
    cfg = pretrained.resolve(Config(model=PretrainedConfig(path=str(gpt2_folder(tmp_path / "m"))),
                                    data=TextConfig(path="corpus.txt", seq_len=16), train=TrainConfig(init="pretrained")))
    validate(cfg)
    assert (cfg.data.tokenizer, cfg.data.tokenizer_path) == ("pretrained", str(tmp_path / "m"))
    for bad, key in ((dict(model=PretrainedConfig()), "model.path"), (dict(data=Config().data), "data"),
                     (dict(model=Config().model), "train.init"), (dict(model_schedule=["tiny"]), "model_schedule")):
        with pytest.raises(ConfigError) as e:
            validate(dataclasses.replace(cfg, **bad))
        assert e.value.key == key, bad
    moved = dataclasses.replace(cfg.model, sha256="0" * 64)
    with pytest.raises(DataError, match="differs from model.sha256"):
        pretrained.resolve(dataclasses.replace(cfg, model=moved))


def gpt2_with_tokenizer(folder, corpus_text):
    """A random GPT-2 whose vocabulary is a byte-level BPE trained here (plus <|endoftext|>, its BOS), with the
    tokenizer saved in the folder as Hugging Face's tokenizer.json."""
    from collapse.data.tokenizer import train_bpe

    tok = train_bpe([corpus_text], 300).tok
    tok.add_special_tokens(["<|endoftext|>"])
    global V
    size, V = V, tok.get_vocab_size()
    try:
        gpt2_folder(folder, bos_token_id=tok.token_to_id("<|endoftext|>"), eos_token_id=tok.token_to_id("<|endoftext|>"))
    finally:
        V = size
    tok.save(str(folder / "tokenizer.json"))
    return folder


def test_the_checkpoints_tokenizer_encodes_in_chunks_exactly(tmp_path):
    from collapse.data.tokenizer import read_pretrained

    text = open(write_corpus(tmp_path / "c.txt", 60)).read()
    folder = gpt2_with_tokenizer(tmp_path / "m", text)
    tok = read_pretrained(folder)
    assert tok.chunked and tok.vocab_size == 300 + 1
    whole = np.asarray(tok.tok.encode(text, add_special_tokens=False).ids)
    np.testing.assert_array_equal(tok.encode(text, chunk_chars=64), whole)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "vocab.json").write_text(json.dumps(vocab["vocab"]))
    merges = [" ".join(m) if isinstance(m, list) else m for m in vocab["merges"]]
    (tmp_path / "v" / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    np.testing.assert_array_equal(read_pretrained(tmp_path / "v").encode(text), whole)  # GPT-2's two-file form
    assert tok.decode(whole) == text


def test_a_study_fine_tunes_the_checkpoint_and_resumes_exactly(tmp_path, monkeypatch):
    """Every generation starts from the checkpoint (train.init=pretrained) on text in its tokenizer's ids; the
    checkpoint's digest is in config.json; a study stopped inside generation 1's training resumes to the files
    of an uninterrupted one."""
    from collapse import train
    from collapse.config import SampleConfig
    from collapse.run import loop
    from tests.helpers import assert_same, outputs, stopped_at_call

    corpus = write_corpus(tmp_path / "corpus.txt", 200)
    folder = gpt2_with_tokenizer(tmp_path / "m", open(corpus).read())
    cfg = pretrained.resolve(Config(
        model=PretrainedConfig(path=str(folder)), data=TextConfig(path=corpus, seq_len=16),
        train=TrainConfig(batch_size=16, epochs=1, log_every=2, lr=1e-3, init="pretrained"),
        sample=SampleConfig(batch_size=64, num_sequences=32), generations=2, compilation_cache=""))
    starts, read = [], TransformerFamily.pretrained

    def counted(family, replicates):
        starts.append(replicates)
        return read(family, replicates)

    monkeypatch.setattr(TransformerFamily, "pretrained", counted)
    loop.run(cfg, tmp_path / "ref")
    assert starts == [1, 1]  # generations 0 and 1 both start from the checkpoint
    recorded = json.loads((tmp_path / "ref" / "config.json").read_text())["model"]
    assert recorded["sha256"] == pretrained.digest(folder) and recorded["_option"] == "pretrained"
    first = np.load(tmp_path / "ref" / "gen_000" / "train_loss.npy")

    with stopped_at_call(monkeypatch, train, "train_chunk", len(first[0]) // 2 + 1):  # in generation 1
        loop.run(cfg, tmp_path / "stopped")
    loop.run(cfg, tmp_path / "stopped")
    assert_same(outputs(tmp_path / "stopped"), outputs(tmp_path / "ref"))


def test_collapse_export_writes_a_generation_that_loads_back_exactly(tmp_path):
    """A study of our own transformer on BPE text: generation 1's model exported by the command reads back as
    model=pretrained with the same logits, and its tokenizer encodes as the run's."""
    from collapse.config import SampleConfig
    from collapse.data.tokenizer import load_tokenizer, read_pretrained
    from collapse.export import main
    from collapse.run import loop
    from collapse.store import RunDir
    from tests.helpers import TINY_MODEL

    corpus = write_corpus(tmp_path / "corpus.txt", 200)
    cfg = Config(model=TINY_MODEL, data=TextConfig(path=corpus, seq_len=16, tokenizer="bpe", bpe_vocab_size=300),
                 train=TrainConfig(batch_size=16, epochs=1, log_every=2), sample=SampleConfig(batch_size=64),
                 generations=2, replicates=2, compilation_cache="")
    store = loop.run(cfg, tmp_path / "run")
    main([str(tmp_path / "run"), "1", str(tmp_path / "out"), "--replicate", "1"])
    model, family, _ = load(tmp_path / "out")
    V = load_tokenizer(store.tokenizer).vocab_size
    ours = TransformerFamily(TINY_MODEL, V)
    params = jax.tree.map(lambda x: x[1], RunDir(tmp_path / "run").load_params(1, ours.abstract(2)))
    ids = jnp.asarray(np.r_[ours.bos, np.arange(15) % V][None])
    assert family.bos == ours.bos == V
    np.testing.assert_array_equal(model(ids), nnx.merge(ours.graphdef, params)(ids))
    text = open(corpus).read()[:2000]
    np.testing.assert_array_equal(read_pretrained(tmp_path / "out").encode(text), load_tokenizer(store.tokenizer).encode(text))


@pytest.mark.parametrize("kind", ["gpt2", "opt"])
def test_logits_equal_transformers_on_a_model_built_from_config(kind, tmp_path):
    """Optional (skipped without torch and transformers, which the package never needs): a randomly initialised
    `transformers` model of each family, saved as safetensors, gives our logits on the same ids."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=V, n_positions=P, n_embd=D, n_layer=L, n_head=A, n_inner=F,
                                         bos_token_id=V - 1, eos_token_id=V - 1)
        hf = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.OPTConfig(vocab_size=V, max_position_embeddings=P, hidden_size=D, num_hidden_layers=L,
                                        num_attention_heads=A, ffn_dim=F, word_embed_proj_dim=D, bos_token_id=2)
        hf = transformers.OPTForCausalLM(config)
    hf.eval()
    hf.save_pretrained(tmp_path / "m", safe_serialization=True)
    model, family, _ = load(tmp_path / "m")
    ids = np.r_[family.bos, np.random.default_rng(1).integers(0, V, P - 1)]
    with torch.no_grad():
        want = hf(torch.tensor(ids[None])).logits[0].numpy()
    got = np.asarray(model(jnp.asarray(ids[None]))[0])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
