#!/usr/bin/env bash
# Every study preset (conf/experiment/) at one scale, then its comparison report into its results folder.
#   bash experiments/run_all.sh [scale] [run folder] [preset ...]   (scale=cpu, the default: every preset in
#                                                                  about four hours on a 2-core CPU; each
#                                                                  preset's header and README state its time)
# Presets reading a text corpus (shumailov2024_lm, gerstgrasser2024_text) take COLLAPSE_TEXT (default
# ../shared/data/tinyshakespeare.txt). A rerun resumes: finished runs are loaded, not recomputed. Each report
# takes its committed options (results/<study>/report.json: headline, labels, heatmap, aggregate) where there
# are some. Only scale=cpu writes into results/; other scales write their reports beside the runs.
set -euo pipefail
scale=${1:-cpu}
runs=${2:-runs}
shift $(( $# < 2 ? $# : 2 ))
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=($(ls conf/experiment | sed 's/\.yaml$//'))
results_of() {  # the committed results folder of a preset
  case $1 in
    distillation_schedule) echo results/distillation/schedule ;;
    *) echo "results/$1" ;;
  esac
}
for name in "${presets[@]}"; do
  uv run collapse -m +experiment="$name" scale="$scale" out_dir="$runs/$name/$scale"
  out=$(results_of "$name")
  [ "$scale" = cpu ] || out="$runs/$name/$scale"
  spec=()
  [ -f "$(results_of "$name")/report.json" ] && spec=(--spec "$(results_of "$name")/report.json")
  uv run collapse-report "$runs/$name/$scale" --out "$out" "${spec[@]}"
done
