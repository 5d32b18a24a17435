#!/usr/bin/env bash
# Issue 13's study at laptop scale, on the default grammar with 1024 human sequences of 64 tokens and 2^18
# training tokens per generation, 8 generations, 3 seeds:
#   targets  train.target = tokens | soft | mixed  x  regime = replace | mix (10 % human data)
#   teacher  soft labels under replace, taught by generation 0 (train.teacher=gen0; `previous` is in targets)
#   fresh    tokens | soft under mix with fresh human data each generation (Alemohammad et al.)
#   schedule tokens | soft under replace: a small generation-0 teacher and tiny students
#            (model_schedule=[small,tiny]) against tiny throughout, at train.lr=1e-3 (at 3e-3 the small
#            model is no better a teacher than tiny in 64 steps: see results/distillation/README.md)
#   bash experiments/distillation.sh [run folder]
# Writes the runs to runs/distillation (default) and the comparisons (summary.csv, comparison.md, figures; options
# in report.json, for `uv run collapse-report --all`) to results/distillation/ and results/distillation/all/.
set -euo pipefail
out=${1:-runs/distillation}
common=(generations=8 seed=0,1,2 data.n_train=1024 train.tokens=262144)
uv run collapse -m out_dir="$out/targets" "${common[@]}" train.target=tokens,soft,mixed regime=replace,mix
uv run collapse -m out_dir="$out/teacher" "${common[@]}" train.target=soft train.teacher=gen0 regime=replace
uv run collapse -m out_dir="$out/fresh" "${common[@]}" train.target=tokens,soft regime=mix regime.fresh=true
uv run collapse -m out_dir="$out/schedule" "${common[@]}" train.target=tokens,soft regime=replace \
  train.lr=1e-3 'model_schedule=[small,tiny],[]'
uv run collapse-report "$out/targets" --out results/distillation --spec results/distillation/report.json
uv run collapse-report "$out/targets" "$out/teacher" "$out/fresh" --out results/distillation/all \
  --spec results/distillation/all/report.json
uv run collapse-report "$out/schedule" --out results/distillation/schedule --spec results/distillation/schedule/report.json
