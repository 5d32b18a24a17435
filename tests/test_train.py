import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse import train
from collapse.config import TrainConfig
from collapse.families.transformer import TransformerFamily
from tests.helpers import TINY_MODEL

V, T = 7, 16


@pytest.fixture(scope="module")
def family():
    return TransformerFamily(TINY_MODEL, V)


def periodic_data(n=96):
    """Sequences 0,1,..,V-1,0,1,.. from a random phase: only the first token is uncertain."""
    phase = np.random.default_rng(0).integers(0, V, n)
    return ((phase[:, None] + np.arange(T)[None]) % V).astype(np.int32)


def test_learning_rate_schedule_closed_form():
    cfg = TrainConfig(lr=1.0, warmup_fraction=0.1, min_lr_ratio=0.1)
    total = jnp.int32(100)  # warmup = 10 steps: (step + 1) / 10, then cosine from 1 to 0.1 over 90 steps
    lr = lambda s: float(train.learning_rate(jnp.int32(s), total, cfg))  # noqa: E731
    assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0)
    assert lr(10) == pytest.approx(1.0)
    assert lr(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert lr(100) == pytest.approx(0.1)
    steps = TrainConfig(lr=1.0, warmup_fraction=0.1, warmup_steps=20, min_lr_ratio=0.1)  # steps win over fraction
    lr = lambda s: float(train.learning_rate(jnp.int32(s), total, steps))  # noqa: E731
    assert lr(0) == pytest.approx(0.05) and lr(19) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 40 / 80)))


def test_total_steps():
    assert train.total_steps(100, T, TrainConfig(batch_size=16, epochs=2.5)) == math.ceil(2.5 * 6)
    assert train.total_steps(100, T, TrainConfig(batch_size=16, tokens=1000)) == math.ceil(1000 / (16 * T))


def test_batch_order_visits_each_sequence_once_per_epoch():
    order = train.batch_order(np.random.default_rng(0), 50, 8, steps=14)  # 6 steps per epoch, 2 left over
    assert order.shape == (14, 8)
    for epoch in range(2):
        seen = order[6 * epoch:6 * epoch + 6].ravel()
        assert len(set(seen)) == 48
    assert not np.array_equal(order[:6], order[6:12])


def test_fit_learns(family):
    cfg = TrainConfig(batch_size=16, epochs=8, lr=1e-2, log_every=8)
    params = family.init(jax.random.split(jax.random.key(0), 1))
    data = periodic_data()[None]
    _, losses = family.fit(params, data, [np.random.default_rng(0)], cfg)
    # the floor is log(V) / T nats: the first token is uniform, the rest are determined
    assert losses[0, 0] > 0.8 * math.log(V)
    assert losses[0, -8:].mean() < 2 * math.log(V) / T


def test_padding_steps_of_the_last_chunk_change_nothing(family):
    params = family.init(jax.random.split(jax.random.key(1), 1))
    data = periodic_data()[None]
    cfg = TrainConfig(batch_size=16, epochs=2, log_every=4)  # 12 steps: 3 full chunks
    a, la = family.fit(params, data, [np.random.default_rng(3)], cfg)
    b, lb = family.fit(params, data, [np.random.default_rng(3)], dataclasses.replace(cfg, log_every=5))  # 3 padded
    np.testing.assert_allclose(la, lb, rtol=1e-6)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_vmapped_replicate_equals_single_run(family):
    cfg = TrainConfig(batch_size=16, epochs=1, log_every=3)
    params = family.init(jax.random.split(jax.random.key(2), 3))
    data = np.stack([periodic_data(), periodic_data()[::-1], periodic_data()[:, ::-1]])
    rngs = lambda: [np.random.default_rng(s) for s in (10, 11, 12)]  # noqa: E731
    p_all, l_all = family.fit(params, data, rngs(), cfg)
    p_one, l_one = family.fit(jax.tree.map(lambda p: p[2:], params), data[2:], rngs()[2:], cfg)
    np.testing.assert_allclose(l_all[2:], l_one, rtol=1e-5)
    # Parameters agree up to float rounding of batched vs unbatched kernels; Adam turns rounding noise in
    # near-zero gradients into O(lr) steps on those coordinates, so compare what the models compute.
    held_out = periodic_data(32)[None]
    np.testing.assert_allclose(family.logprob(jax.tree.map(lambda p: p[2:], p_all), held_out),
                               family.logprob(p_one, held_out), rtol=1e-4)


def test_caller_keeps_its_parameters(family):
    params = family.init(jax.random.split(jax.random.key(3), 1))
    before = [np.asarray(x).copy() for x in jax.tree.leaves(params)]
    family.fit(params, periodic_data()[None], [np.random.default_rng(0)], TrainConfig(batch_size=16, epochs=1))
    for x, y in zip(jax.tree.leaves(params), before):  # the donated state was a copy
        np.testing.assert_array_equal(np.asarray(x), y)


def test_training_reaches_every_position_that_sampling_uses(family):
    """Continuation mode writes prompt ⧺ continuation as one sequence of T tokens, so sampling reads the
    positions 0..T-1 that training updates, and no other: the gradient reaches exactly those position rows,
    and the decoder's cache for a P-token prompt (plus BOS) continued by T - P tokens holds T positions."""
    from collapse import sample as sampler

    params = jax.tree.map(lambda x: x[0], family.init(jax.random.split(jax.random.key(0), 1)))
    grads = jax.grad(train.lm_loss, argnums=1)(family.graphdef, params, jnp.asarray(periodic_data(8)))
    rows = np.flatnonzero(np.abs(np.asarray(grads["pos_embed"]["embedding"][...])).sum(axis=1))
    np.testing.assert_array_equal(rows, np.arange(T))
    assert TINY_MODEL.context > T  # rows T.. exist and get no gradient
    for P in (1, 6, T - 1):
        assert sampler.cache_lengths(P + 1, T - P)[-1] == T


def _scan_pair():
    """Looped and scanned families of TINY_MODEL, and one replicate's looped params with the same weights in
    the stacked layout (the per-layer blocks stacked on a layer axis after the replicate axis)."""
    looped = TransformerFamily(TINY_MODEL, V)
    scanned = TransformerFamily(dataclasses.replace(TINY_MODEL, scan_layers=True), V)
    params = looped.init(jax.random.split(jax.random.key(5), 1))
    blocks = [params["blocks"][i] for i in range(TINY_MODEL.n_layers)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *blocks)
    stacked_params = scanned.init(jax.random.split(jax.random.key(5), 1))
    for name in ("tok_embed", "pos_embed", "ln_f", "head"):
        stacked_params[name] = params[name]
    stacked_params["blocks"] = stacked
    return looped, scanned, params, stacked_params


def _decayed(params) -> set[str]:
    """The paths of the decayed leaves, the layer index dropped (the unstacked `blocks/0/...` -> `blocks/...`)."""
    mask = train.decay_mask(params)
    paths = set()
    for path, decays in jax.tree_util.tree_leaves_with_path(mask):
        names = [str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey) and not isinstance(k.key, int)]
        if decays:
            paths.add("/".join(names))
    return paths


def test_weight_decay_by_parameter_kind_whatever_the_layer_stacking():
    _, _, params, stacked = _scan_pair()
    one = lambda p: jax.tree.map(lambda x: x[0], p)  # noqa: E731  (the optimizer sees one replicate)
    assert _decayed(one(params)) == _decayed(one(stacked)) == {
        "tok_embed/embedding", "pos_embed/embedding", "head/kernel", "blocks/attn/qkv/kernel",
        "blocks/attn/out/kernel", "blocks/up/kernel", "blocks/down/kernel"}


def test_weight_decay_leaves_scales_and_biases_alone():
    cfg = TrainConfig(lr=0.1, weight_decay=0.5, warmup_fraction=0.0, grad_clip=0.0)
    _, _, _, stacked = _scan_pair()
    params = jax.tree.map(lambda x: x[0], stacked)
    tx = train.optimizer(cfg, total=10)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    # a zero gradient leaves only the decay: -lr * wd * p on decayed leaves, nothing elsewhere
    np.testing.assert_allclose(updates["blocks"]["ln1"]["scale"][...], 0.0)
    np.testing.assert_allclose(updates["blocks"]["up"]["bias"][...], 0.0)
    kernel = params["blocks"]["up"]["kernel"][...]
    np.testing.assert_allclose(updates["blocks"]["up"]["kernel"][...], -0.1 * 0.5 * kernel, rtol=1e-6)


def test_scanned_layers_train_like_looped_layers():
    looped, scanned, params, stacked = _scan_pair()
    cfg = TrainConfig(batch_size=16, epochs=1, log_every=3, weight_decay=0.5)
    data = periodic_data()[None]
    _, la = looped.fit(params, data, [np.random.default_rng(7)], cfg)
    _, lb = scanned.fit(stacked, data, [np.random.default_rng(7)], cfg)
    np.testing.assert_allclose(la, lb, rtol=1e-5)


def test_train_state_is_a_named_pytree(family):
    params = family.init(jax.random.split(jax.random.key(6), 2))
    state = jax.vmap(lambda p: train.init_state(p, TrainConfig()))(params)
    assert isinstance(state, train.TrainState) and state._fields == ("params", "opt_state")
    assert jax.tree.structure(state.params) == jax.tree.structure(params)
    for x, y in zip(jax.tree.leaves(state.params), jax.tree.leaves(params)):
        np.testing.assert_array_equal(x, y)


def test_mid_generation_checkpoint_restores_the_train_state(family, tmp_path):
    """The state saved by `Checkpoints.save` comes back as a `TrainState` with the same leaves."""
    from collapse.store import RunDir

    cfg = TrainConfig(batch_size=16, epochs=1)
    params = family.init(jax.random.split(jax.random.key(7), 2))
    state = jax.vmap(lambda p: train.init_state(p, cfg))(params)
    losses = np.arange(12, dtype=np.float32).reshape(2, 6)
    abstract = train.abstract_checkpoint(family.abstract(2), cfg, 6, family.layout)
    RunDir(tmp_path).train_checkpoints(0, 4, abstract).save(4, {"state": state, "losses": losses})
    step, saved = RunDir(tmp_path).train_checkpoints(0, 4, abstract).restored
    assert step == 4 and isinstance(saved["state"], train.TrainState)
    assert jax.tree.structure(saved["state"]) == jax.tree.structure(state)
    for x, y in zip(jax.tree.leaves(saved["state"]), jax.tree.leaves(state)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(saved["losses"], losses)
