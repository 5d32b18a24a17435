#!/usr/bin/env bash
# Issue 14's study at laptop scale (conf/experiment/curation.yaml at scale=cpu): curation of each generation's
# samples under regime=replace, on the default grammar with 1024 human sequences of 64 tokens and 2^18
# training tokens per generation, 8 generations, seeds 0, 1, 2, a fixed synthetic budget of 1024 sequences:
#   none                     no curation (the baseline)
#   verifier noise 0 / 1     keep the best half of 2n candidates by the exact true log-prob per token, plus
#                            N(0, noise^2) (the scores' spread across samples is about 0.5 nats per token)
#   perplexity gen0 low/high keep the least / most surprising half of 2n under generation 0's model
#   perplexity current low   keep the least surprising half under the generation's own model (self-selection)
#   detector                 Drayson et al.'s importance resampling (upsample 1.5, bias 10, max_repeats 3)
#   correct                  a quarter of the generated tokens redrawn from the truth given the prefix, or a
#                            quarter of the samples replaced whole by the truth's continuation (unit=sequence)
#   verifier ratio           keep the best half by log p_true - log q_model per token (what the model under-produces)
#   bash experiments/curation.sh [run folder]
# Writes the runs to runs/curation (default) and the comparison to results/curation/.
set -euo pipefail
out=${1:-runs/curation}
uv run collapse -m +experiment=curation scale=cpu out_dir="$out"
uv run collapse-report "$out" --out results/curation --spec results/curation/report.json
