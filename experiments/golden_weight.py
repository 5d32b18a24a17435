"""The golden-ratio weight (He et al. 2025, arXiv 2502.18049): every generation fits a 1-D Gaussian (MLE) to
n_h fresh truth draws weighted w and n_s draws of the previous fit weighted 1 - w, n = n_h + n_s = 1100 points,
200 generations x 1000 replicates: the jobs of `+experiment=he2025_golden scale=cpu`, same seed, same numbers.

    error(w) = E‖μ_g - μ*‖² averaged over generations 150-199 (their T = 200 and window), simulation mean ± 95 %
               against the exact recursion's fixed point (collapse.families.gaussian.stationary_fresh_mix) on a
               fine grid of w; marked: w* = (√(k² + 4k) - k)/2 and the proportional weight k/(1 + k).

    taskset -c 0 uv run python experiments/golden_weight.py      # → results/golden_weight.png, its table printed
"""

import numpy as np

from _common import figure, save, study, theory
from collapse.families import GaussianConfig, analytic, gaussian
from collapse.regimes import MixConfig
from collapse.regimes.mix import golden_weight
from collapse.stats import mean_ci

N, G, R, WINDOW = 1100, 200, 1000, slice(150, 200)
GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
model = GaussianConfig(samples=N)
fig, ax = figure(1, 2)
print("k      weight        w       error (x 1e-4)  95 % half  exact fixed point")
for a, (human_fraction, color) in zip(ax, ((0.5, "C0"), (0.0909, "C1"))):
    regime = lambda w: MixConfig(fresh=True, human_fraction=human_fraction, human_weight=w)  # noqa: E731
    n_h, n_s = regime("").counts(N)
    k = n_h / n_s
    fine = np.linspace(0.02, 0.98, 97)
    exact = [gaussian.stationary_fresh_mix(model, regime(str(w)))["mean_sq_dist"] for w in fine]
    theory(a, fine, np.asarray(exact) * 1e4, "exact stationary error")
    for name, w in (("proportional", ""), ("golden", "golden"), *((str(x), str(x)) for x in GRID)):
        error_GR = analytic.simulate(study(model, regime(w), generations=G, replicates=R)).metrics["mean_sq_dist"]
        mean, half = mean_ci(error_GR[WINDOW].mean(0))
        weight = regime(w).weight(N) or n_h / (n_h + n_s)
        marker = {"proportional": "s", "golden": "*"}.get(name, "o")
        a.errorbar(weight, mean * 1e4, half * 1e4, color=color if marker == "o" else "k", marker=marker, ms=8 if
                   marker == "*" else 5, ls="none", label=None if marker == "o" else f"{name} w = {weight:.3f}")
        fixed = gaussian.stationary_fresh_mix(model, regime(w))["mean_sq_dist"]
        print(f"{k:<6.3g} {name:<13} {weight:.3f}   {mean * 1e4:10.4f}   {half * 1e4:9.4f}   {fixed * 1e4:10.4f}")
    a.axvline(golden_weight(k), color="0.5", lw=0.8, ls=":")
    a.set(xlabel="human weight w", ylabel="E‖μ_g - μ*‖², g = 150-199 (x 1e-4)", yscale="log",
          title=f"k = n_h/n_s = {n_h}/{n_s}")
    a.legend(fontsize=7)
fig.suptitle(f"1-D Gaussian, fresh human data, n = {N}, {R} replicates (mean ± 95 %)", fontsize=9)
save(fig, "golden_weight")
