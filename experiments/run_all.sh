#!/usr/bin/env bash
# Every study preset (conf/experiment/) at one scale, then its comparison report into its results folder.
#   bash experiments/run_all.sh [scale] [run folder] [preset ...]   (scale=cpu, the default: every preset in
#                                                                  about 5.5 hours on a 2-core CPU; each
#                                                                  preset's header and README state its time)
# Presets reading a text corpus (shumailov2024_lm, gerstgrasser2024_text) take COLLAPSE_TEXT (default
# ../shared/data/tinyshakespeare.txt). A rerun resumes: finished runs are loaded, not recomputed. Each report
# takes its committed options (results/<study>/report.json: headline, labels, heatmap, aggregate) where there
# are some. Only scale=cpu writes into results/; other scales write their reports to <run folder>/results-<scale>/.
set -euo pipefail
scale=${1:-cpu}
runs=${2:-runs}
shift $(( $# < 2 ? $# : 2 ))
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=($(ls conf/experiment | sed 's/\.yaml$//'))
studies_of() {  # the committed results folders a preset's runs feed: "FOLDER PRESET..." per line
  case $1 in
    distillation_targets) echo "results/distillation distillation_targets" ;&
    distillation_teacher | distillation_fresh)
      echo "results/distillation/all distillation_targets distillation_teacher distillation_fresh" ;;
    distillation_schedule) echo "results/distillation/schedule distillation_schedule" ;;
    radioactivity | watermark_price) echo "results/audit/$1 $1" ;;  # the provenance audits' folder
    *) echo "results/$1 $1"  # and its subsets: a report.json in a subfolder picks runs by config ("where")
       for spec in results/"$1"/*/report.json; do if [ -f "$spec" ]; then echo "$(dirname "$spec") $1"; fi; done ;;
  esac
}
report() {  # report FOLDER PRESET...: the comparison of these presets' runs, with FOLDER's committed options
  local folder=$1 out=$1 dirs=() spec=()
  shift
  for name in "$@"; do dirs+=("$runs/$name/$scale"); done
  for dir in "${dirs[@]}"; do
    [ -d "$dir" ] || { echo "run_all: $folder not reported: no runs in $dir" >&2; return 0; }
  done
  [ -f "$folder/report.json" ] && spec=(--spec "$folder/report.json")
  [ "$scale" = cpu ] || out="$runs/results-$scale/${folder#results/}"
  uv run collapse-report "${dirs[@]}" --out "$out" "${spec[@]}" < /dev/null
}
run_figures() {  # figures of single runs that a study's README shows (their data is not in summary.csv)
  local jobs="$runs/$1/$scale" figures="results/$1/figures"
  [ "$scale" = cpu ] || return 0
  case $1 in
    shumailov2024_lm)  # seed 0 of each condition (jobs: regime.human_fraction 0, 0.1 x sample.beam_size 0, 5 x seed)
      for job in 0:h0_beam0 3:h0_beam5 6:h0.1_beam0 9:h0.1_beam5; do
        cp "$jobs/${job%%:*}/figures/ppl_gen0_hist.png" "$figures/ppl_gen0_hist_${job#*:}.png"
      done ;;
    curation)  # seed 0 of curate=verifier (job 3) and curate=detector (job 18)
      cp "$jobs/3/figures/curation_scores.png" "$figures/scores_verifier.png"
      cp "$jobs/18/figures/curation_scores.png" "$figures/scores_detector.png" ;;
    knowledge_collapse)  # facts' survival by training count beside the exact refit (numbers: survival.csv)
      uv run python experiments/knowledge_survival.py "$jobs"/*/ --out "$figures/survival.png" ;;
    radioactivity)  # the open-model test against the tokens scored, with and without the filter
      uv run python experiments/audit_tokens.py "$jobs" ;;
  esac
}
baseline() {  # a preset's runs outside its sweep, inside its folder (so its report compares them)
  case $1 in
    bohacek2023_healing)  # the human-only baseline of its header
      uv run collapse +experiment="$1" scale="$scale" regime=mix regime.human_fraction=1 regime.heal_after=0 \
        regime.heal_generations=0 out_dir="$runs/$1/$scale/human_only" ;;
  esac
}
for name in "${presets[@]}"; do
  uv run collapse -m +experiment="$name" scale="$scale" out_dir="$runs/$name/$scale"
  baseline "$name"
done
for name in "${presets[@]}"; do studies_of "$name"; done | awk '!seen[$0]++' | while read -r folder names; do
  report "$folder" $names
done
for name in "${presets[@]}"; do run_figures "$name"; done
