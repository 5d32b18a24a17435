"""Gaussian variance under recursive refitting (1-D, M = 100 points a generation, 2000 replicates):

(a) replace, MLE:       E[σ²_g] = ((M-1)/M)^(g+1)        (each MLE refit is σ² χ²_(M-1)/M: mean factor (M-1)/M)
(b) replace, unbiased:  E[σ²_g] = σ²_0 (a martingale) ...                  (Shumailov et al. 2024, Thm 3.1)
(c) ... yet E[log σ²_g] = (g+1)(ψ((M-1)/2) - log(D/2)) → -∞ (D = M or M - 1): σ_g → 0 almost surely, and
    the median follows exp(E[log σ²_g]) while the mean, carried by ever rarer replicates, stays up
(d) accumulate, MLE:    E[σ²_g] = c Π_(k=2)^(g+1) (1 - 1/(M k²)) → sin(π/√M)/(π/√M) > 0 (Kazdan et al. 2024)

    taskset -c 0 uv run python experiments/gaussian_variance.py      # → results/gaussian_variance.png
"""

import numpy as np

from _common import band, figure, save, study, theory
from collapse.families import GaussianConfig
from collapse.regimes import AccumulateConfig, ReplaceConfig
from collapse.families import analytic, gaussian

M, G, R = 100, 200, 2000
g = np.arange(G)
fig, ax = figure(2, 2)
for i, (estimator, color) in enumerate((("mle", "C0"), ("unbiased", "C1"))):
    model = GaussianConfig(samples=M, estimator=estimator)
    var = analytic.simulate(study(model, generations=G, replicates=R)).metrics["var_ratio"]
    expected_log = gaussian.expected_log_det_ratio(model, G)
    band(ax[i], g, var, "mean", color)
    theory(ax[i], g, gaussian.expected_var_ratio(model, ReplaceConfig(), G), "E[σ²_g] closed form")
    ax[i].plot(g, np.median(var, 1), color=color, ls=":", label="median")
    theory(ax[i], g, np.exp(expected_log), "exp E[log σ²_g]", "k:")
    ax[i].set(yscale="log", title=f"({'ab'[i]}) replace, {estimator}: σ²_g/σ²_0")
    band(ax[2], g, np.log(var), estimator, color)
    theory(ax[2], g, expected_log, "(g+1)(ψ((M-1)/2) - log(D/2))" if i else None)
ax[2].set(title="(c) replace: E[log σ²_g/σ²_0] → -∞")

mle = GaussianConfig(samples=M)
var = analytic.simulate(study(mle, AccumulateConfig(), generations=G, replicates=R)).metrics["var_ratio"]
band(ax[3], g, var, "mean", "C2")
theory(ax[3], g, gaussian.expected_var_ratio(mle, AccumulateConfig(), G), "exact recursion")
limit = np.sin(np.pi / np.sqrt(M)) / (np.pi / np.sqrt(M))
ax[3].axhline(limit, color="0.5", lw=0.8, ls=":", label=f"limit sin(π/√M)/(π/√M) = {limit:.4f}")
ax[3].set(ylim=(0.96, 1.0), title="(d) accumulate, MLE: σ²_g/σ²_0")
for a in ax:
    a.set_xlabel("generation")
    a.legend(fontsize=7)
fig.suptitle(f"1-D Gaussian, M = {M} points a generation, {R} replicates (simulation: mean ± 95 % band)",
             fontsize=9)
save(fig, "gaussian_variance")
