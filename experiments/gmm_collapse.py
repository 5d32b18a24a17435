"""Shumailov et al. 2024's Gaussian-mixture example: two components (2-D, means 4 apart, unit covariance),
refitted by EM on 1000 samples of the previous fit each generation, 2000 generations, 20 replicates.

Collapse is visible within ~50 generations and the fit approaches a point mass by ~2000 (one component
usually dies first). There is no closed form for EM; the dashed curve is the per-component Gaussian law
E[var_k] ≈ ((n_k - 1)/n_k)^(g+1) with n_k = 500 points per component, which ignores the drift of the weights.

    taskset -c 0 uv run python experiments/gmm_collapse.py      # → results/gmm_collapse.png (~1 min)
"""

import jax
import jax.numpy as jnp
import numpy as np

from _common import band, figure, save, study, theory
from collapse.families import GMMConfig
from collapse.families import analytic, gmm

G, R = 2000, 20
SHOWN = (0, 50, 100, 150, 200, 350, 1999)
model = GMMConfig()
sim = analytic.simulate(study(model, generations=G, replicates=R), snapshots=SHOWN)
fig, ax = figure(3, 3)
for a, gen in zip(ax, SHOWN):
    i = list(sim.generations).index(gen)
    fit = gmm.Params(*(jnp.asarray(sim.params[f][i, 0]) for f in gmm.Params._fields))
    x = np.asarray(gmm.draw(fit, jax.random.key(gen), 1000))
    a.scatter(x[:, 0], x[:, 1], s=1, alpha=0.5, color="C0")
    a.set(xlim=(-6, 6), ylim=(-4, 4), title=f"generation {gen} (replicate 0)")

g = np.arange(G)
band(ax[7], g + 1, sim.metrics["l2_true"], "simulation", "C0")
ax[7].set(xscale="log", xlabel="generation + 1", title="L2 distance to the true density")
n_k = model.samples / model.components
for k, color in zip(range(model.components), ("C1", "C2")):
    band(ax[8], g + 1, sim.metrics[f"var_{k}"], f"component {k}", color)
theory(ax[8], g + 1, ((n_k - 1) / n_k) ** (g + 1), "((n_k-1)/n_k)^(g+1), n_k = 500 (approx.)")
ax[8].set(xscale="log", yscale="log", xlabel="generation + 1", title="per-component variance tr Σ_k / d")
for a in ax[7:]:
    a.legend(fontsize=7)
fig.suptitle(f"2-component GMM refitted by EM on {model.samples} samples a generation, {R} replicates "
             "(mean ± 95 % band)", fontsize=9)
save(fig, "gmm_collapse")
