"""regime=online (collapse.online, collapse.run.online): the compiled chain of updates equals a hand-run of single
sampling and training steps; a study carries model and optimiser state across generations, records what it
trained on, and resumes after an interruption to identical files; meaningless combinations are refused."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse import certificate, online, train
from collapse.config import SampleConfig
from collapse.devices import single
from collapse.errors import ConfigError
from collapse.families.transformer import TransformerFamily
from collapse.regimes import OnlineConfig
from collapse.run import loop
from collapse.sample import generate_replicate
from collapse.store import RunDir
from collapse.validate import validate
from collapse.watermark import Watermark
from tests.helpers import TINY_MODEL, assert_same, outputs, stopped_at_call, tiny_config

V, T, W, E = 16, 16, 8, 5


def test_updates_equal_a_hand_run_of_single_steps():
    """Update u samples from the parameters after u updates (the same sequence a hand-run sampler draws with
    update u's key) and takes the standard trainer's single step on its window, the Adam state carried; the
    chain cut into chunks of 2 and 3 updates gives the same numbers as one chunk of 5."""
    family = TransformerFamily(TINY_MODEL, V)
    cfg = online.constant(tiny_config().train, 3e-3)
    sampling = online.Sampling.of(SampleConfig(top_k=8), V)
    params_R = family.init(jax.random.split(jax.random.key(0), 1))
    key = jax.random.key(7)
    key_data_R = jax.random.key_data(key)[None]
    fresh = lambda: train.TrainState(jax.tree.map(jnp.copy, params_R),  # noqa: E731
                                     jax.vmap(train.optimizer(cfg).init)(params_R))

    def run(state, first, n):
        return online.updates(family.graphdef, cfg, sampling, single(), family.bos, T, W, n, state, key_data_R,
                              jnp.int32(first))

    state, (tokens_RUT, start_RU, loss_RU) = run(fresh(), 0, E)
    state_a, first = run(fresh(), 0, 2)
    state_a, second = run(state_a, 2, 3)
    np.testing.assert_array_equal(np.concatenate([first[0], second[0]], axis=1), tokens_RUT)
    for a, b in zip(jax.tree.leaves(state_a.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)

    np.testing.assert_allclose(train.learning_rate(jnp.arange(50), jnp.int32(1), cfg), 3e-3)  # constant
    warm = online.constant(dataclasses.replace(tiny_config().train, warmup_steps=10), 3e-3)  # gen 0's warmup: not here
    np.testing.assert_allclose(train.learning_rate(jnp.arange(50), jnp.int32(1), warm), 3e-3)
    hand = fresh()
    for u in range(E):
        sample_key, start_key = jax.random.split(jax.random.fold_in(key, u))
        assert int(start_RU[0, u]) == int(jax.random.randint(start_key, (), 0, T - W + 1))
        params = jax.tree.map(lambda x: x[0], hand.params)
        drawn = generate_replicate(family.graphdef, params, jnp.full((1, 1), family.bos, jnp.int32), sample_key, 1.0,
                                   8, 1.0, T, sampling.candidates, Watermark())
        np.testing.assert_array_equal(drawn[0], tokens_RUT[0, u], err_msg=f"update {u}'s sample")
        s = int(start_RU[0, u])
        assert 0 <= s <= T - W
        window_RIBW = jnp.asarray(tokens_RUT[:, u, s:s + W])[:, None, None]
        hand, loss_RI = train.train_chunk(family.graphdef, cfg, single(), hand, window_RIBW, jnp.ones(1, bool),
                                          jnp.int32(1))
        np.testing.assert_allclose(loss_RI[0, 0], loss_RU[0, u], rtol=1e-5)
    D = TINY_MODEL.d_model
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(hand), jax.tree.leaves(state)):
        a, b, name = np.asarray(a), np.asarray(b), jax.tree_util.keystr(path)
        if name.endswith("['qkv']['bias'].value"):  # (its parameter and its Adam moments)
            # the key bias has gradient 0 (softmax is shift-invariant) and float noise for one, which Adam
            # normalises to steps of order lr, different in two compiled programs; it changes no logit (below)
            a, b = np.delete(a, np.s_[D:2 * D], axis=-1), np.delete(b, np.s_[D:2 * D], axis=-1)
        # float32 rounding (1e-7) of two programs, amplified where Adam divides a near-zero gradient by its scale
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(a).max(), err_msg=name)
    logits = [nnx.merge(family.graphdef, jax.tree.map(lambda x: x[0], p))(tokens_RUT[0]) for p in (hand.params, state.params)]
    np.testing.assert_allclose(*logits, rtol=1e-4, atol=1e-5)
    assert len({tuple(row) for row in np.asarray(tokens_RUT[0])}) > 1  # the sequences differ from update to update


def online_config(**regime):
    return tiny_config(regime=OnlineConfig(**{"updates_per_generation": 6, "window": W, "lr": 1e-3, **regime}),
                       train=dataclasses.replace(tiny_config().train, init="previous"), generations=3, replicates=2)


def test_an_online_study_records_its_updates_and_resumes_exactly(tmp_path, monkeypatch):
    """Generations 1 and 2 train on E sampled sequences each (provenance g - 1, depth g); the optimiser state
    is checkpointed; a study stopped in generation 2's updates resumes from generation 1's model and optimiser
    state to the files of an uninterrupted run."""
    cfg, ref, stopped = online_config(), tmp_path / "ref", tmp_path / "stopped"
    loop.run(cfg, ref)
    for g in (1, 2):
        gen = ref / f"gen_{g:03d}"
        np.testing.assert_array_equal(np.load(gen / "rep_00" / "train_provenance.npy"), np.full(6, g - 1))
        tokens = [np.load(gen / f"rep_0{r}" / "online_tokens.npy") for r in (0, 1)]
        assert tokens[0].shape == (6, T) and not np.array_equal(*tokens)  # each replicate its own updates
        assert np.load(gen / "train_loss.npy").shape == (2, 6)
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as ckpt:  # Adam's step count: carried from generation to generation
            counts = [x for p, x in jax.tree_util.tree_leaves_with_path(ckpt.restore(gen / "optimizer"))
                      if "count" in jax.tree_util.keystr(p)]
        assert counts and all(np.array_equal(c, [6 * g] * 2) for c in counts)
        manifest, record = (json.loads((gen / f).read_text()) for f in ("manifest.json", "provenance.json"))
        assert manifest["online"] == {"updates": 6, "window": W, "lr": 1e-3}
        assert manifest["replicates"][0]["counts"] == {f"gen_{g - 1}": 6}
        assert set(record["certificate"]["replicates"][0]["roots"]) == {f"gen_{g - 1}"}
    depths = [json.loads((ref / f"gen_{g:03d}" / "provenance.json").read_text())["mean_depth"] for g in range(3)]
    assert depths == [0, 1, 2]
    verdict = certificate.verify(RunDir(ref))  # the rows are certified from this generation's online_tokens
    assert verdict.certified == {0: 1.0, 1: 1.0, 2: 1.0} and not verdict.problems

    with stopped_at_call(monkeypatch, online, "updates", 4):  # generation 1 runs 2 chunks of log_every = 4 updates
        loop.run(cfg, stopped)
    assert (stopped / "gen_001" / "train.done").exists() and not (stopped / "gen_002" / "train.done").exists()
    loop.run(cfg, stopped)
    assert_same(outputs(stopped), outputs(ref))


@pytest.mark.parametrize("change, key", [
    (dict(train=tiny_config().train), "train.init"),
    (dict(sample=SampleConfig(batch_size=64, mode="continuation", prompt_len=4)), "sample.mode"),
    (dict(sample=SampleConfig(batch_size=64, watermark="green_list")), "sample.watermark"),
    (dict(regime=OnlineConfig(window=T + 1)), "regime.window"),
    (dict(regime=OnlineConfig(heal_after=1, heal_generations=1)), "regime.heal_generations"),
    (dict(regime=OnlineConfig(updates_per_generation=0)), "regime.updates_per_generation"),
    (dict(sample=SampleConfig(batch_size=64, withheld=16)), "sample.withheld"),
])
def test_meaningless_online_studies_are_refused(change, key):
    cfg = dataclasses.replace(online_config(), **change)
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert e.value.key == key


def test_online_with_curation_a_teacher_or_an_accumulate_key_is_refused():
    from collapse.curation import VerifierCurateConfig
    from collapse.hydra_errors import config_error
    from tests.helpers import compose_cfg

    with pytest.raises(ConfigError) as e:
        validate(dataclasses.replace(online_config(), curate=VerifierCurateConfig()))
    assert e.value.key == "curate"
    soft = dataclasses.replace(online_config().train, target="soft")
    with pytest.raises(ConfigError) as e:
        validate(dataclasses.replace(online_config(), train=soft))
    assert e.value.key == "train.target"
    overrides = ("regime=online", "regime.human_fraction=0.1")
    with pytest.raises(Exception) as e:  # Hydra's error, which the command line reports as this ConfigError:
        compose_cfg(*overrides)
    error = config_error(e.value, overrides)
    assert error.key == "regime.human_fraction" and "not a key of regime=online" in str(error)
