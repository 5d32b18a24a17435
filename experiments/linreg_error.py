"""Linear regression refitted on its own labels (Gerstgrasser et al. 2024; Dey & Donoho): T = 64 design rows,
d = 16, σ² = 1, 1000 replicates (a fresh standard-normal design each):

    replace:     E[test error_g] = σ² d/(T - d - 1) · (g + 1)                      grows without bound
    accumulate:  E[test error_g] = σ² d/(T - d - 1) · Σ_(i<=g+1) 1/i²  <  π²/6 · σ² d/(T - d - 1)
    accumulate_subsample and mix (10 % human) have no closed form here: simulation only.

    taskset -c 0 uv run python experiments/linreg_error.py      # → results/linreg_error.png
"""

import numpy as np

from _common import band, figure, save, study, theory
from collapse.families import LinRegConfig
from collapse.regimes import AccumulateConfig, AccumulateSubsampleConfig, MixConfig, ReplaceConfig
from collapse.families import analytic, linreg

G, R = 100, 1000
model = LinRegConfig(samples=64, dim=16, noise=1.0)
unit = linreg.error_unit(model)
g = np.arange(G)
fig, ax = figure(1, 2)
for regime, color in ((ReplaceConfig(), "C0"), (AccumulateConfig(), "C2"), (AccumulateSubsampleConfig(), "C4"),
                      (MixConfig(human_fraction=0.1), "C1")):
    error = analytic.simulate(study(model, regime, generations=G, replicates=R)).metrics["test_error"]
    label = regime.name + (" 10 % human" if isinstance(regime, MixConfig) else "")
    for a in ax:
        band(a, g, error / unit, label, color)
    expected = linreg.expected_test_error(model, regime, G)
    if expected is not None:
        for a in ax:
            theory(a, g, expected / unit, None)
for a in ax:
    a.axhline(np.pi**2 / 6, color="0.5", lw=0.8, ls=":")
    a.set(xlabel="generation", ylabel="test error / (σ² d/(T - d - 1))")
ax[0].plot([], [], "k--", lw=1, label="closed form: g + 1, Σ 1/i²")
ax[0].plot([], [], color="0.5", lw=0.8, ls=":", label="π²/6 (accumulate bound)")
ax[0].legend(fontsize=7)
ax[0].set(title="all regimes")
ax[1].set(ylim=(0, 10), title="zoom: accumulate stays below π²/6")
fig.suptitle(f"OLS refitted on its own labels: T = {model.samples}, d = {model.dim}, {R} replicates "
             "(mean ± 95 % band)", fontsize=9)
save(fig, "linreg_error")
