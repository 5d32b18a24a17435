"""Training targets (docs/training-targets.md): the soft and top-k losses against closed forms, the mixed
loss, a student distilled from a fixed teacher, and end-to-end studies with soft targets."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse.run import loop
from collapse import distill, train
from collapse.config import TrainConfig
from collapse.errors import ConfigError
from collapse.regimes import MixConfig
from collapse.validate import validate
from collapse.data import grammar
from collapse.families.transformer import TransformerFamily
from collapse.model import with_bos
from tests.helpers import TINY_MODEL, assert_same, outputs, stopped_at_call, tiny_config

V = 6


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _kl(q, p):
    """KL(q ‖ p) over the last axis, float64."""
    return np.sum(np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - np.log(p)), 0.0), axis=-1)


def _logits(seed, shape=(2, 3, V), scale=2.0):
    return np.random.default_rng(seed).normal(0, scale, shape).astype(np.float32)


# ---------------------------------------------------------------------------------- the losses, closed form


@pytest.mark.parametrize("tau", [1.0, 0.5, 2.0])
def test_soft_loss_is_tau_squared_kl_of_the_tempered_distributions(tau):
    student, teacher = _logits(0), _logits(1)
    q = _softmax(teacher.astype(np.float64) / tau)
    p = _softmax(student.astype(np.float64) / tau)
    expected_BT = tau**2 * _kl(q, p)
    got_BT = np.asarray(distill.soft_loss(jnp.asarray(student), jnp.asarray(teacher), tau))
    assert got_BT.shape == (2, 3)
    np.testing.assert_allclose(got_BT, expected_BT, rtol=1e-5, atol=1e-6)
    # τ² scaling: the loss at τ is τ² times the τ = 1 loss of the logits divided by τ
    np.testing.assert_allclose(got_BT, tau**2 * np.asarray(distill.soft_loss(student / tau, teacher / tau, 1.0)),
                               rtol=1e-5, atol=1e-6)


def test_soft_loss_by_hand_and_zero_when_student_equals_teacher():
    # two tokens: teacher logits (0, log 3) -> q = (1/4, 3/4); student (0, 0) -> p = (1/2, 1/2)
    teacher = jnp.asarray([[[0.0, np.log(3.0)]]], jnp.float32)
    student = jnp.zeros((1, 1, 2), jnp.float32)
    kl = 0.25 * np.log(0.5) + 0.75 * np.log(1.5)
    np.testing.assert_allclose(distill.soft_loss(student, teacher, 1.0), [[kl]], rtol=1e-6)
    logits = jnp.asarray(_logits(2))
    np.testing.assert_allclose(distill.soft_loss(logits, logits, 1.0), 0.0, atol=1e-6)
    np.testing.assert_allclose(distill.soft_loss(logits, logits + 3.0, 2.0), 0.0, atol=1e-6)  # shift-invariant


def _topk(teacher, tau, k):
    logp = jax.nn.log_softmax(jnp.asarray(teacher) / tau)
    return jax.lax.top_k(logp, k)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_topk_loss_equals_the_online_loss_at_k_equal_v(tau):
    student, teacher = _logits(3), _logits(4)
    online = distill.soft_loss(jnp.asarray(student), jnp.asarray(teacher), tau)
    np.testing.assert_allclose(distill.topk_soft_loss(jnp.asarray(student), *_topk(teacher, tau, V), tau), online,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 4, 5])
def test_topk_loss_below_v_spreads_the_rest_uniformly(k):
    """The documented target: the k stored probabilities as they are, the rest (1 − Σ top-k) spread evenly over
    the other V − k tokens; the gap to the online loss shrinks to 0 as k → V."""
    tau = 1.5
    student, teacher = _logits(5), _logits(6)
    q_full = _softmax(teacher.astype(np.float64) / tau)
    order = np.argsort(-q_full, axis=-1)
    top = np.take_along_axis(q_full, order[..., :k], axis=-1)
    q = np.full_like(q_full, 0.0)
    q += ((1 - top.sum(-1)) / (V - k))[..., None]
    np.put_along_axis(q, order[..., :k], top, axis=-1)
    p = _softmax(student.astype(np.float64) / tau)
    got = distill.topk_soft_loss(jnp.asarray(student), *_topk(teacher, tau, k), tau)
    np.testing.assert_allclose(got, tau**2 * _kl(q, p), rtol=1e-5, atol=1e-6)


def test_topk_gap_to_online_vanishes_as_k_grows():
    student, teacher = _logits(7, (4, 8, 16)), _logits(8, (4, 8, 16), scale=3.0)
    online = np.asarray(distill.soft_loss(jnp.asarray(student), jnp.asarray(teacher), 1.0))
    gaps = [np.abs(np.asarray(distill.topk_soft_loss(jnp.asarray(student), *_topk(teacher, 1.0, k), 1.0)) - online).mean()
            for k in (2, 8, 15, 16)]
    assert gaps[0] > gaps[1] > gaps[2] > 0 and gaps[3] < 1e-5


# ------------------------------------------------------------------------------- the train step's loss


@pytest.fixture(scope="module")
def family():
    return TransformerFamily(TINY_MODEL, V)


def _params(family, seed):
    return jax.tree.map(lambda x: x[0], family.init(jax.random.split(jax.random.key(seed), 1)))


def test_mixed_loss_is_alpha_hard_plus_one_minus_alpha_soft_on_soft_rows(family):
    tokens_BT = jnp.asarray(np.random.default_rng(0).integers(0, V, (4, 8)), jnp.int32)
    is_soft_B = jnp.asarray([True, False, True, False])
    student, teacher = _params(family, 0), _params(family, 1)
    g = family.graphdef
    logits = lambda p: nnx_logits(g, p, tokens_BT)  # noqa: E731
    hard_B = np.asarray(jax.vmap(lambda t: train.lm_loss(g, student, t[None]))(tokens_BT))
    soft_B = np.asarray(distill.soft_loss(logits(student), logits(teacher), 2.0)).mean(1)
    alpha = 0.3
    cfg = TrainConfig(target="mixed", hard_weight=alpha, soft_temperature=2.0)
    got = distill.distill_loss(g, student, {"tokens": tokens_BT, "soft": is_soft_B}, cfg, g, teacher)
    rows_B = np.where(np.asarray(is_soft_B), alpha * hard_B + (1 - alpha) * soft_B, hard_B)
    np.testing.assert_allclose(got, rows_B.mean(), rtol=1e-5)
    soft = distill.distill_loss(g, student, {"tokens": tokens_BT, "soft": is_soft_B},
                                dataclasses.replace(cfg, target="soft"), g, teacher)
    np.testing.assert_allclose(soft, np.where(np.asarray(is_soft_B), soft_B, hard_B).mean(), rtol=1e-5)
    # no soft row: the hard loss, as lm_loss computes it
    none = distill.distill_loss(g, student, {"tokens": tokens_BT, "soft": jnp.zeros(4, bool)}, cfg, g, teacher)
    np.testing.assert_allclose(none, train.lm_loss(g, student, tokens_BT), rtol=1e-6)
    # row weights (regime.human_weight): each row's loss, tokens or distilled, counts its weight
    weight_B = jnp.asarray([1.2, 0.8, 1.5, 0.5])
    weighted = distill.distill_loss(g, student, {"tokens": tokens_BT, "soft": is_soft_B, "weight": weight_B}, cfg,
                                    g, teacher)
    np.testing.assert_allclose(weighted, (np.asarray(weight_B) * rows_B).mean(), rtol=1e-5)
    tokens_only = distill.distill_loss(g, student, {"tokens": tokens_BT, "weight": weight_B}, cfg)
    np.testing.assert_allclose(tokens_only, (np.asarray(weight_B) * hard_B).mean(), rtol=1e-5)


def nnx_logits(graphdef, params, tokens_BT):
    from flax import nnx

    model = nnx.merge(graphdef, params)
    return model(with_bos(tokens_BT, model.bos))


def test_stored_topk_targets_give_the_online_loss_at_k_equal_v(family):
    """`teacher_topk` over a model's soft rows (the others zero), then the train step's loss: k = V matches
    the teacher run online."""
    rng = np.random.default_rng(1)
    data_RNT = rng.integers(0, V, (1, 10, 8)).astype(np.int32)
    soft_RN = np.zeros((1, 10), bool)
    soft_RN[0, [1, 4, 5, 9]] = True
    teacher_R = family.init(jax.random.split(jax.random.key(3), 1))
    teacher = distill.Teacher(family.graphdef, teacher_R, soft_RN)
    logp, ids = distill.teacher_topk(teacher, data_RNT, 2.0, V, batch=3)
    assert logp.shape == ids.shape == (1, 10, 8, V) and logp.dtype == np.float32 and ids.dtype == np.int32
    assert not logp[0, ~soft_RN[0]].any()
    t = jax.tree.map(lambda x: x[0], teacher_R)
    expected = jax.nn.log_softmax(nnx_logits(family.graphdef, t, jnp.asarray(data_RNT[0])) / 2.0)
    np.testing.assert_allclose(np.take_along_axis(np.asarray(expected), ids[0], -1)[soft_RN[0]],
                               logp[0][soft_RN[0]], rtol=1e-5, atol=1e-6)
    student = _params(family, 4)
    cfg = TrainConfig(target="soft", soft_temperature=2.0)
    batch = {"tokens": jnp.asarray(data_RNT[0]), "soft": jnp.asarray(soft_RN[0])}
    online = distill.distill_loss(family.graphdef, student, batch, cfg, family.graphdef, t)
    stored = distill.distill_loss(family.graphdef, student, {**batch, "topk_logp": logp[0], "topk_ids": ids[0]}, cfg)
    np.testing.assert_allclose(stored, online, rtol=1e-5)


def test_the_online_teacher_gets_no_gradient(family):
    tokens_BT = jnp.asarray(np.random.default_rng(2).integers(0, V, (2, 8)), jnp.int32)
    student, teacher = _params(family, 5), _params(family, 6)
    cfg = TrainConfig(target="soft")
    grads = jax.grad(lambda s, t: distill.distill_loss(family.graphdef, s, {"tokens": tokens_BT, "soft": jnp.ones(2, bool)},
                                                     cfg, family.graphdef, t), argnums=(0, 1))(student, teacher)
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(grads[1]))
    assert any(float(jnp.abs(x).sum()) > 0 for x in jax.tree.leaves(grads[0]))


# ------------------------------------------------------------------------- a student learns its teacher


def _mean_kl(family, teacher_R, student_R, tokens_NT):
    """Mean KL(teacher ‖ student) per token over the positions of `tokens_NT` (τ = 1)."""
    t = jax.tree.map(lambda x: x[0], teacher_R)
    s = jax.tree.map(lambda x: x[0], student_R)
    tokens = jnp.asarray(tokens_NT)
    return float(distill.soft_loss(nnx_logits(family.graphdef, s, tokens), nnx_logits(family.graphdef, t, tokens),
                                 1.0).mean())


def test_a_soft_student_approaches_its_teacher_on_a_tiny_grammar():
    """Teacher: a tiny model trained on the tokens of a 16-token grammar. Student: from scratch, target=soft,
    distill_on=both on the same human rows. The mean KL(teacher ‖ student) per token on held-out rows falls
    from 1.6 nats at init to 0.002 (bound: 0.01, under a hundredth of the init value); a hard-label student
    trained the same way stays further away (0.006: it learns the sampled tokens, not the teacher)."""
    from collapse.data import GrammarConfig

    g = grammar.make_grammar(GrammarConfig(vocab_size=16, n_states=4))
    data = np.asarray(grammar.sample(g, jax.random.key(0), 256 + 64, 16), np.int32)
    train_NT, held_out_NT = data[:256], data[256:]
    family = TransformerFamily(TINY_MODEL, 16)
    cfg = TrainConfig(batch_size=32, epochs=10, lr=1e-2, log_every=16)
    teacher_R, _ = family.fit(family.init(jax.random.split(jax.random.key(1), 1)), train_NT[None],
                              [np.random.default_rng(0)], cfg)
    init_R = family.init(jax.random.split(jax.random.key(2), 1))
    at_init = _mean_kl(family, teacher_R, init_R, held_out_NT)
    teacher = distill.Teacher(family.graphdef, teacher_R, np.ones((1, 256), bool))
    soft_cfg = dataclasses.replace(cfg, target="soft", distill_on="both")
    student_R, losses = family.fit(init_R, train_NT[None], [np.random.default_rng(1)], soft_cfg, teacher=teacher)
    hard_R, _ = family.fit(init_R, train_NT[None], [np.random.default_rng(1)], cfg)
    soft_kl, hard_kl = _mean_kl(family, teacher_R, student_R, held_out_NT), _mean_kl(family, teacher_R, hard_R,
                                                                                      held_out_NT)
    assert at_init > 1.0
    assert soft_kl < 0.01 and soft_kl < at_init / 100, (at_init, soft_kl)
    assert soft_kl < hard_kl, (soft_kl, hard_kl)
    assert losses[0, -16:].mean() < 0.01  # the training loss is this KL on the training rows


# ------------------------------------------------------------------------------------------ the loop


def test_label_sources_follow_distill_on_and_teacher():
    """Soft rows carry the teacher's generation (g - 1, or 0 with teacher=gen0), hard rows -1; generation 0 and
    target=tokens train on tokens only."""
    from collapse import provenance as prov
    from collapse.config import Config, TrainConfig

    provenance = np.array([-1, 0, 0, -1, 2])
    cfg = lambda **t: Config(train=TrainConfig(target="soft", **t))  # noqa: E731
    np.testing.assert_array_equal(prov.label_sources(cfg(distill_on="samples").train, 2, 3, provenance),
                                  [-1, 2, 2, -1, 2])
    np.testing.assert_array_equal(prov.label_sources(cfg(distill_on="human").train, 2, 3, provenance),
                                  [2, -1, -1, 2, -1])
    np.testing.assert_array_equal(prov.label_sources(cfg(distill_on="both", teacher="gen0").train, 0, 3, provenance),
                                  [0] * 5)
    np.testing.assert_array_equal(prov.label_sources(cfg(distill_on="both").train, -1, 0, provenance), [-1] * 5)
    np.testing.assert_array_equal(prov.label_sources(Config().train, 2, 3, provenance), [-1] * 5)


def _with(**train_keys):
    return dataclasses.replace(tiny_config().train, **train_keys)


@pytest.fixture(scope="module")
def tokens_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens")
    loop.run(tiny_config(), path)
    return path


def test_a_soft_study_runs_and_resumes(tokens_run, tmp_path):
    cfg = tiny_config(train=_with(target="soft", soft_temperature=2.0))
    loop.run(cfg, tmp_path)
    marker = json.loads((tmp_path / "gen_001" / "train.done").read_text())
    assert marker["teacher"] == 0 and marker["soft_rows"] == [cfg.data.n_train]  # replace: every row synthetic
    assert "teacher" not in json.loads((tmp_path / "gen_000" / "train.done").read_text())
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.done")}
    loop.run(cfg, tmp_path)  # everything done: nothing recomputed
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.done")} == before
    # generation 0 always trains on tokens: identical to the tokens study; generation 1 differs
    rows = lambda path, g: [r for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines())  # noqa: E731
                            if r["generation"] == g]
    assert rows(tmp_path, 0) == rows(tokens_run, 0)
    np.testing.assert_array_equal(np.load(tmp_path / "gen_001/rep_00/train_index.npy"),
                                  np.load(tokens_run / "gen_001/rep_00/train_index.npy"))
    assert not np.array_equal(np.load(tmp_path / "gen_001/train_loss.npy"), np.load(tokens_run / "gen_001/train_loss.npy"))


def _values(path, metric):
    """{(generation, replicate): value} of one metric of a finished run."""
    return {(r["generation"], r["replicate"]): r["value"]
            for r in map(json.loads, (path / "metrics.jsonl").read_text().splitlines()) if r["metric"] == metric}


@pytest.mark.parametrize("teacher", ["previous", "gen0"])
def test_the_student_teacher_gap_is_against_the_actual_teacher(teacher, tmp_path):
    """teacher_gap_kl_true and teacher_gap_ppl_human_test of generation g are the student's metric minus its
    teacher's, replicate by replicate: generation g - 1 (train.teacher=previous) or generation 0 (gen0);
    generation 0 has no teacher and no gap."""
    cfg = tiny_config(train=_with(target="soft", teacher=teacher), generations=3, replicates=2)
    loop.run(cfg, tmp_path)
    for m in ("kl_true", "ppl_human_test"):
        value, gap = _values(tmp_path, m), _values(tmp_path, f"teacher_gap_{m}")
        assert sorted(gap) == [(g, r) for g in (1, 2) for r in (0, 1)]
        for (g, r), v in gap.items():
            assert v == pytest.approx(value[(g, r)] - value[(0 if teacher == "gen0" else g - 1, r)], abs=1e-12)


def test_train_teacher_gen0_needs_a_distillation_target():
    with pytest.raises(ConfigError, match="train.teacher"):
        validate(tiny_config(train=_with(teacher="gen0")))


def test_a_topk_study_resumes_a_killed_generation_exactly(tmp_path, monkeypatch):
    """topk targets are recomputed from the teacher on resume (not stored): a generation interrupted after a
    mid-generation checkpoint resumes to the numbers of an uninterrupted run. Mixed targets on the human rows
    of a mix (distill_on=human), teacher=gen0, 2 replicates."""
    cfg = tiny_config(train=_with(target="mixed", hard_weight=0.25, teacher_probs="topk", soft_top_k=5,
                                  distill_on="human", teacher="gen0", epochs=4, checkpoint_every=4),
                      regime=MixConfig(human_fraction=0.5), replicates=2, generations=3)
    loop.run(cfg, tmp_path / "ref")
    marker = json.loads((tmp_path / "ref" / "gen_002" / "train.done").read_text())
    assert marker["teacher"] == 0 and marker["soft_rows"] == [32, 32]

    with stopped_at_call(monkeypatch, train, "train_chunk", 4 + 4 + 3):  # 4 chunks per generation
        loop.run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "gen_002" / "train_state").is_dir()
    loop.run(cfg, tmp_path / "run")
    assert_same(outputs(tmp_path / "ref"), outputs(tmp_path / "run"))


def test_a_large_teacher_distils_into_a_smaller_student(tmp_path):
    """model_schedule with target=soft: generation 0 (tiny, 128 wide) teaches generation 1 (32 wide) through
    its own graphdef; the train marker names the teacher, provenance.json the soft label source."""
    import json

    cfg = tiny_config(model_schedule=["tiny", "transformer"], train=_with(target="soft", teacher_probs="online"))
    loop.run(cfg, tmp_path)
    marker = json.loads((tmp_path / "gen_001" / "train.done").read_text())
    assert marker["teacher"] == 0 and marker["soft_rows"] == [cfg.data.n_train]
    record = json.loads((tmp_path / "gen_001" / "provenance.json").read_text())["replicates"][0]
    assert record["by_label_source"] == {"soft_gen_0": cfg.data.n_train}
    np.testing.assert_array_equal(np.load(tmp_path / "gen_001" / "rep_00" / "train_label_source.npy"), 0)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["generation"] for r in rows} == {0, 1}
