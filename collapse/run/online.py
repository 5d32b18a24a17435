"""Training a generation of regime=online (`collapse.regimes.online`): generation g >= 1 continues generation
g - 1's model and optimiser state for E updates (`collapse.online.updates`, in chunks of train.log_every
updates) and returns what it trained on as its training sets: update u's sampled sequence is row u, of
provenance g - 1 (sampled by the model that left generation g - 1, on its way to g). The optimiser state is
checkpointed beside the parameters, so a resumed study continues it exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from collapse import online
from collapse.devices import abstract, to_host
from collapse.errors import DataError
from collapse.progress import Progress
from collapse.regimes import TrainingSet
from collapse.rng import Phase
from collapse.run.phase import Outputs
from collapse.run.pools import Lineage
from collapse.train import TrainState, optimizer


def train(study, g: int, lineage: Lineage, tracker, out: Outputs) -> tuple[object, list[TrainingSet], np.ndarray]:
    """Generation g's E updates for every replicate: (parameters, training sets, losses `[R, E]`); writes the
    sequences and window starts (`online_tokens`, `online_start`) and the optimiser state."""
    cfg, store, family = study.cfg, study.store, study.family(g)
    regime, layout, T = cfg.regime, family.layout, cfg.data.seq_len
    E, W, I = regime.updates_per_generation, regime.window or T, cfg.train.log_every
    train_cfg = online.constant(cfg.train, regime.lr)
    params = lineage.model(g - 1).params
    state = layout.put(TrainState(jax.tree.map(jnp.copy, params), _optimizer_state(study, g, train_cfg, params)),
                       layout.params())
    key_data_R = layout.put(jax.vmap(jax.random.key_data)(study.keys(g, Phase.TRAIN)), layout.params())
    sampling = online.Sampling.of(cfg.sample.at(g), family.vocab_size)
    tokens, starts, losses = [], [], []
    with Progress(E, f"gen {g} online", "update") as bar:
        for first in range(0, E, I):
            n = min(I, E - first)
            state, chunk = online.updates(family.graphdef, train_cfg, sampling, layout, family.bos, T, W, n, state,
                                          key_data_R, jnp.int32(first))
            tokens_RUT, start_RU, loss_RU = (to_host(x) for x in chunk)
            if not np.isfinite(loss_RU).all():
                bad = int(np.flatnonzero(~np.isfinite(loss_RU).all(axis=0))[0])
                raise FloatingPointError(f"generation {g}: non-finite loss at update {first + bad + 1} (lower "
                                         f"regime.lr?); generations before {g} are intact in {store.path}")
            tokens.append(tokens_RUT), starts.append(start_RU), losses.append(loss_RU)
            bar.update(n, loss=float(loss_RU[:, -1].mean()))
            tracker.train_loss(g, first + n, loss_RU[:, -1])
    store.save_tree(store.optimizer_state(g), state.opt_state)
    out.written(store.optimizer_state(g))
    tokens_RET = np.concatenate(tokens, axis=1).astype(np.int32)
    start_RE = np.concatenate(starts, axis=1).astype(np.int32)
    for r in range(study.replicates):
        out.array(store.array(g, r, "online_tokens"), tokens_RET[r])
        out.array(store.array(g, r, "online_start"), start_RE[r])
    sets = [TrainingSet(tokens_ET, np.full(E, g - 1, np.int32), np.arange(E, dtype=np.int64))
            for tokens_ET in tokens_RET]
    return state.params, sets, np.concatenate(losses, axis=1)


def _optimizer_state(study, g: int, train_cfg, params_R):
    """A fresh AdamW state at generation 1 (generation 0 trained with its own schedule), else generation g - 1's,
    its digest verified."""
    tx = optimizer(train_cfg)
    if g == 1:
        return jax.vmap(tx.init)(params_R)
    store, path = study.store, study.store.optimizer_state(g - 1)
    if not store.verify(g - 1, "train", only=path):
        raise DataError(path, "optimiser state changed since it was written")
    shapes = jax.eval_shape(jax.vmap(tx.init), study.family(g - 1).abstract(study.replicates))
    return store.load_tree(path, abstract(shapes, study.family(g).layout.params()))


def manifest(regime, seq_len: int) -> dict:
    """What the manifest records of an online generation's updates."""
    return {"updates": regime.updates_per_generation, "window": regime.window or seq_len, "lr": regime.lr}
