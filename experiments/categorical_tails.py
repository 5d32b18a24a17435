"""Tails under sampling knobs (Dohmatob et al. 2024, "A Tale of Tails"): a unigram over Zipf(1.1),
V = 1000, refitted by MLE from n = 10 000 tokens a generation under replace, 300 replicates.

(a) temperature τ < 1 narrows the tail: in the infinite-sample limit Zipf(β) becomes Zipf(β/τ), so the
    effective exponent of generation g is β/τ^g (simulation: least-squares slope over ranks seen >= 10 times;
    the curve ends once fewer than two symbols are seen 10 times)
(b) top-k and top-p cut the tail: the support drops to k, or to the nucleus of the fit, at once
    (infinite-sample limit: `tail_curve`); sampling alone (τ = 1) loses symbols slowly
(c) the fitted rank-frequency curves at τ = 0.9 with Zipf(β/τ^g) overlaid

    taskset -c 0 uv run python experiments/categorical_tails.py      # → results/categorical_tails.png
"""

import numpy as np

from _common import band, figure, save, study, theory
from collapse.families import CategoricalConfig
from collapse.families import analytic, categorical

V, N, G, R, BETA = 1000, 10000, 30, 300, 1.1
g = np.arange(G)
fig, ax = figure(1, 3)
frequencies = {}
for tau, color in ((1.0, "C0"), (0.95, "C1"), (0.9, "C2")):
    model = CategoricalConfig(vocab_size=V, samples=N, zipf_exponent=BETA, temperature=tau)
    sim = analytic.simulate(study(model, generations=G, replicates=R), snapshots=range(G))
    band(ax[0], g, sim.metrics["zipf_exponent"], f"τ = {tau}", color)
    theory(ax[0], g, categorical.tail_curve(model, G)[1], None)
    counts = sim.params["counts_CV"][:, :, 0]
    frequencies[tau] = -np.sort(-counts / counts.sum(-1, keepdims=True), axis=-1).mean(1)  # [G, V] by rank
    if tau == 1.0:
        band(ax[1], g, sim.metrics["support"], "sampling only (τ = 1)", color)
ax[0].plot([], [], "k--", lw=1, label="β/τ^g (infinite samples)")
ax[0].set(yscale="log", xlabel="generation", title="(a) effective Zipf exponent")

for knobs, color in ((dict(top_k=200), "C3"), (dict(top_p=0.9), "C4")):
    model = CategoricalConfig(vocab_size=V, samples=N, zipf_exponent=BETA, **knobs)
    sim = analytic.simulate(study(model, generations=G, replicates=R))
    band(ax[1], g, sim.metrics["support"], ", ".join(f"{k} = {v}" for k, v in knobs.items()), color)
    theory(ax[1], g, categorical.tail_curve(model, G)[0], None)
ax[1].plot([], [], "k--", lw=1, label="infinite-sample support")
ax[1].set(yscale="log", xlabel="generation", title="(b) support: top-k, top-p cut the tail")

rank = np.arange(1, V + 1)
for gen, color in zip((0, 5, 10, 20), ("C0", "C1", "C2", "C3")):
    f = frequencies[0.9][gen]
    ax[2].plot(rank[f > 0], f[f > 0], color=color, lw=1.2, label=f"generation {gen}")
    exponent = BETA / 0.9**gen
    theory(ax[2], rank, categorical.zipf(V, exponent), None, "k--")
ax[2].plot([], [], "k--", lw=1, label="Zipf(β/τ^g)")
ax[2].set(xscale="log", yscale="log", ylim=(1e-5, 1), xlabel="rank",
          title="(c) mean rank-frequency, τ = 0.9")
for a in ax:
    a.legend(fontsize=7)
fig.suptitle(f"Unigram Zipf({BETA}), V = {V}, n = {N} tokens a generation, replace, {R} replicates "
             "(mean ± 95 % band)", fontsize=9)
save(fig, "categorical_tails")
