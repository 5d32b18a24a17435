"""Losing symbols: a unigram over Zipf(1.1), V = 200 symbols, refitted by MLE from n = 200 tokens a
generation under replace, 2000 replicates:

(a) a symbol of probability p is absent from one generation's n tokens with probability (1 - p)^n
(b) its count then follows a Wright-Fisher chain c' ~ Binomial(n, c/n): survival after k refits is a
    matrix power, above Suresh et al. 2024's bound 1 - exp(-np/k)
(c) so the expected support after k refits is Σ_i Pr[symbol i survives]

    taskset -c 0 uv run python experiments/categorical_loss.py      # → results/categorical_loss.png
"""

import numpy as np

from _common import band, figure, save, study, theory
from collapse.families import CategoricalConfig
from collapse.regimes import ReplaceConfig
from collapse.families import analytic, categorical

V, N, G, R = 200, 200, 60, 2000
model = CategoricalConfig(vocab_size=V, samples=N)
sim = analytic.simulate(study(model, generations=G, replicates=R), snapshots=range(G))
present = sim.params["counts_CV"][:, :, 0] > 0  # [G, R, V]
p = categorical.zipf(V, model.zipf_exponent)
g = np.arange(G)
fig, ax = figure(1, 3)

lost = 1 - present[0].mean(0)
half = 1.96 * np.sqrt(lost * (1 - lost) / R)
ax[0].errorbar(N * p, lost, yerr=half, fmt=".", ms=3, color="C0", elinewidth=0.6, label="simulation ± 95 %")
theory(ax[0], N * p, categorical.loss_probability(p, N), "(1 - p)^n")
ax[0].set(xscale="log", xlabel="expected count n·p", title="(a) lost in one generation")

for rank, color in zip((5, 15, 40, 100), ("C0", "C1", "C2", "C3")):
    band(ax[1], g + 1, present[:, :, rank - 1].astype(float), f"rank {rank} (np = {N * p[rank - 1]:.2g})", color)
    theory(ax[1], g + 1, categorical.survival_probability(p[rank - 1], N, G), None)
    theory(ax[1], g + 1, categorical.suresh_bound(p[rank - 1], N, G), None, "k:")
ax[1].plot([], [], "k--", lw=1, label="exact (Wright-Fisher)")
ax[1].plot([], [], "k:", lw=1, label="1 - exp(-np/k) (Suresh et al.)")
ax[1].set(xscale="log", xlabel="refits k = generation + 1", title="(b) Pr[symbol survives k refits]")

support = categorical.theory(model, ReplaceConfig(), G)["support"]
band(ax[2], g + 1, sim.metrics["support"], "simulation", "C0")
theory(ax[2], g + 1, support, "Σ_i Pr[i survives]")
ax[2].set(xscale="log", xlabel="refits k = generation + 1", title="(c) support (symbols left)")
for a in ax:
    a.legend(fontsize=6, loc="lower left" if a is ax[1] else "best")
fig.suptitle(f"Unigram Zipf(1.1), V = {V}, n = {N} tokens a generation, replace, {R} replicates "
             "(mean ± 95 % band)", fontsize=9)
save(fig, "categorical_loss")
