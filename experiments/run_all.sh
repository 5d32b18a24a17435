#!/usr/bin/env bash
# Every study preset (conf/experiment/) at one scale, then its comparison report into results/<preset>/.
#   bash experiments/run_all.sh [scale] [run folder]      (scale=cpu, the default: about two hours on a
#                                                          2-core CPU in all; each preset states its own time)
# Presets reading a text corpus (shumailov2024_lm, gerstgrasser2024_text) take COLLAPSE_TEXT (default
# ../shared/data/tinyshakespeare.txt). A rerun resumes: finished runs are loaded, not recomputed.
set -euo pipefail
scale=${1:-cpu}
runs=${2:-runs}
for preset in conf/experiment/*.yaml; do
  name=$(basename "$preset" .yaml)
  uv run collapse -m +experiment="$name" scale="$scale" out_dir="$runs/$name/$scale"
  # collapse-report compares the jobs of one sweep; --headline m1,m2,m3 (being added) picks the metrics drawn
  uv run collapse-report "$runs/$name/$scale" --out "results/$name"
done
