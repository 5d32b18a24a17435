#!/usr/bin/env bash
# Soft vs hard labels under recursive training (issue 13's study, laptop scale): train.target =
# tokens | soft | mixed, under regime=replace and regime=mix (10 % human data), 8 generations, 3 seeds, on
# the default grammar with 1024 human sequences and a budget of 2^18 training tokens per generation.
#   bash experiments/distillation.sh [run folder]
# Writes the runs to runs/distillation (default) and the comparison to results/distillation/.
set -euo pipefail
out=${1:-runs/distillation}
uv run collapse -m out_dir="$out/targets" generations=8 seed=0,1,2 data.n_train=1024 train.tokens=262144 \
  train.target=tokens,soft,mixed regime=replace,mix
uv run collapse-report "$out/targets" --out results/distillation
