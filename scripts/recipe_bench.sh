#!/usr/bin/env bash
# The synthetic small-data benchmark of docs/RESULTS.md ("Training recipe on a synthetic small-data
# benchmark"): writes the benchmark with `ahmsa synth --preset small-data`, runs LOSO for the default
# recipe and for each option of the recipe alone and combined, for three training seeds, and prints one
# table row per variant (pooled UF1 and accuracy: mean and standard deviation over the seeds; mean
# last-epoch training accuracy over folds and seeds; seconds of training per run, the sum of the folds'
# epoch times, also for resumed runs). A synthetic proxy, not evidence about real data.
#
#   scripts/recipe_bench.sh [AHMSA_BINARY] [WORK_DIR]      (defaults: build/ahmsa, /tmp/recipe_bench)
#   SEEDS="1 2 3" SUBJECTS=12 EPOCHS=25 THREADS=1 VARIANTS="default mixup" scripts/recipe_bench.sh
# Finished runs are resumed (the same command skips them). Needs jq and awk.
set -euo pipefail
AHMSA=${1:-build/ahmsa}
WORK=${2:-/tmp/recipe_bench}
SEEDS=${SEEDS:-"1 2 3"}
SUBJECTS=${SUBJECTS:-12}
EPOCHS=${EPOCHS:-25}
THREADS=${THREADS:-1}
MODEL="size=16;stem=16;channels=32,64,128"

declare -A OPTS=(
  [default]=""
  [translate]="--translate 0.1"
  [crop]="--random-crop 0.2"
  [rotate]="--rotate 10"
  [erase]="--erase 0.25"
  [mixup]="--mixup 0.4"
  [cutmix]="--cutmix 1"
  [ema]="--ema 0.95"
  [swa]="--swa-epochs 5"
  [drop_path]="DP"
  [combined]="--translate 0.1 --random-crop 0.2 --rotate 10 --erase 0.25 --mixup 0.4 --swa-epochs 5 DP"
)
VARIANTS=${VARIANTS:-"default translate crop rotate erase mixup cutmix ema swa drop_path combined"}

mkdir -p "$WORK"
[ -f "$WORK/data/manifest.json" ] || "$AHMSA" synth --preset small-data --subjects "$SUBJECTS" --seed 1 --out "$WORK/data" >&2

printf '| variant | options | pooled UF1 (mean ± sd) | accuracy (mean ± sd) | train acc, last epoch | training s per run |\n|---|---|---|---|---|---|\n'
for v in $VARIANTS; do
  opts=${OPTS[$v]}
  model=$MODEL
  if [[ "$opts" == *DP* ]]; then opts=${opts/DP/}; model="$MODEL;drop_path=0.1"; fi
  uf1s="" accs="" trains="" secs=""
  for seed in $SEEDS; do
    out="$WORK/$v/seed$seed"
    mkdir -p "$WORK/$v"
    # shellcheck disable=SC2086
    "$AHMSA" train --cache "$WORK/data" --out "$out" --epochs "$EPOCHS" --threads "$THREADS" --seed "$seed" --quiet \
      --model-config "$model" $opts >"$out.log" 2>&1 || { echo "variant $v seed $seed failed: see $out.log" >&2; exit 1; }
    secs="$secs $(cat "$out"/fold_*/log.csv | awk -F, '$1 != "epoch" {t += $10} END {printf "%.0f", t}')"
    uf1s="$uf1s $(jq '.pooled.uf1' "$out/metrics.json")"
    accs="$accs $(jq '.pooled.accuracy' "$out/metrics.json")"
    trains="$trains $(for f in "$out"/fold_*/log.csv; do tail -1 "$f" | cut -d, -f4; done | awk '{s+=$1} END {print s/NR}')"
  done
  stat() { echo "$1" | awk '{n=NF; for(i=1;i<=n;i++){s+=$i; q+=$i*$i}; m=s/n; sd=(n>1)?sqrt((q-n*m*m)/(n-1)):0; printf "%.3f ± %.3f", m, sd}'; }
  mean() { echo "$1" | awk '{for(i=1;i<=NF;i++) s+=$i; printf "%.3f", s/NF}'; }
  printf '| %s | `%s` | %s | %s | %s | %s |\n' "$v" "${OPTS[$v]/DP/drop_path=0.1}" "$(stat "$uf1s")" "$(stat "$accs")" \
    "$(mean "$trains")" "$(echo "$secs" | awk '{for(i=1;i<=NF;i++) s+=$i; printf "%.0f", s/NF}')"
done
