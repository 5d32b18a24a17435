#!/usr/bin/env bash
# Issue 13's study at laptop scale: the four distillation presets (conf/experiment/distillation_*.yaml) at
# scale=cpu, on the default grammar with 1024 human sequences of 64 tokens and 2^18 training tokens per
# generation, 8 generations, seeds 0, 1, 2:
#   targets  train.target = tokens | soft | mixed  x  regime = replace | mix (10 % human data)
#   teacher  soft labels under replace, taught by generation 0 (train.teacher=gen0; `previous` is in targets)
#   fresh    tokens | soft under mix with fresh human data each generation (Alemohammad et al.)
#   schedule tokens | soft under replace: a small generation-0 teacher and tiny students
#            (model_schedule=[small,tiny]) against tiny throughout, at train.lr=1e-3 (at 3e-3 the small
#            model is no better a teacher than tiny in 64 steps: see results/distillation/README.md)
#   bash experiments/distillation.sh [run folder]
# Writes the runs to <run folder>/distillation_*/cpu (default runs/) and the comparisons (summary.csv,
# comparison.md, figures; options in each report.json) to results/distillation/ (targets),
# results/distillation/all/ (targets, teacher, fresh) and results/distillation/schedule/.
set -euo pipefail
exec bash "$(dirname "$0")/run_all.sh" cpu "${1:-runs}" \
  distillation_targets distillation_teacher distillation_fresh distillation_schedule
