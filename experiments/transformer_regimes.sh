#!/usr/bin/env bash
# Replace vs accumulate vs accumulate-subsample vs mixing in 10 % human data, on the ground-truth language,
# at a fixed training budget per generation (the human train split's tokens x 4 epochs), 8 generations,
# 2 replicates each (Shumailov et al. 2024; Gerstgrasser et al. 2024; Kazdan et al. 2024).
#   bash experiments/transformer_regimes.sh [run folder]      (about 35 min on a 2-core CPU)
# Writes the runs to runs/regimes (default) and the comparison to results/regimes/ (summary.csv, comparison.md,
# figures; options in results/regimes/report.json, so `uv run collapse-report --all` rebuilds it without the runs).
set -euo pipefail
out=${1:-runs/regimes}
uv run collapse -m out_dir="$out" generations=8 replicates=2 train.tokens=524288 \
  regime=replace,accumulate,accumulate_subsample,mix
uv run collapse-report "$out" --out results/regimes --spec results/regimes/report.json
