"""The Gaussian ecosystem (docs/ecosystems.md#the-gaussian-ecosystem): three labs, n = 8 private real points and
m = 24 synthetic points a round, under three W — isolated (I), a ring ((I + P)/2) and fully mixed (all 1/3):

(a) the labs' disagreement E(μ_a − μ_b)²: reading each other pulls the labs together (homogenisation), at the
    consensus rate (m/(n+m))|λ₂(W)| = 0.75, 0.375, 0 per round;
(b) each lab's error E(μ − μ*)²: the same reads that homogenise also average out the labs' synthetic noise;
(c) each lab's E σ² (unbiased fits) rises above σ*²: a pooled fit adds the spread between the means of the
    groups it pools (the truth's and the models' it reads), more when it reads other labs than only itself.
Simulation (mean ± 95 % band over 2000 replicates) and the exact recursion (dashed).

    taskset -c 0 uv run python experiments/gaussian_ecosystem.py      # → results/gaussian_ecosystem.png
"""

import jax
import numpy as np

from _common import band, figure, save, theory
from collapse.families import gaussian_ecosystem as eco

N, M, T, R = 8, 24, 30, 2000
K = 3
P = np.roll(np.eye(K), 1, axis=1)
CASES = {"isolated (W = I)": np.eye(K), "ring ((I + P)/2)": (np.eye(K) + P) / 2, "mixed (all 1/3)": np.full((K, K), 1 / K)}
t = np.arange(T)
fig, ax = figure(1, 3)
for i, (name, W) in enumerate(CASES.items()):
    C, color = eco.counts(W, M), f"C{i}"
    mu, var = eco.simulate(jax.random.key(i), C, N, 0, T, R)
    th = eco.moments(C, N, 0, T)
    label = f"{name}: rate {round(eco.consensus_rate(W, N, M), 12):.3g}"
    band(ax[0], t, (mu[:, :, 0] - mu[:, :, 1]) ** 2, label, color)
    theory(ax[0], t, th.disagreement_TKK()[:, 0, 1], None)
    band(ax[1], t, mu[:, :, 0] ** 2, name, color)
    theory(ax[1], t, th.error_TK(0.0)[:, 0], None)
    band(ax[2], t, var[:, :, 0], name, color)
    theory(ax[2], t, th.var_TK[:, 0], "exact recursion" if i == 2 else None)
ax[0].set(title="(a) disagreement E(μ_a − μ_b)²", yscale="log")
ax[1].set(title="(b) lab a's error E(μ_a − μ*)²", yscale="log")
ax[2].set(title="(c) lab a's E σ²_a (σ*² = 1)")
for a in ax:
    a.set_xlabel("round")
    a.legend(fontsize=7)
fig.suptitle(f"Gaussian ecosystem: {K} labs, n = {N} private real + m = {M} synthetic points a round, {R} replicates",
             fontsize=9)
save(fig, "gaussian_ecosystem")
