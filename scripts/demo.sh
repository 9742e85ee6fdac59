#!/usr/bin/env bash
# The end-to-end demo (`make run`): synthetic corpus -> flow cache -> LOSO training of AHMSA-Net ->
# pooled UF1 / UAR / accuracy and the report's paths. Every stage is resumable: a second run reuses
# the corpus, the cache and the finished folds.
#
#   scripts/demo.sh BUILD_DIR        (default: build)
#
# Environment knobs:
#   AHMSA_DEMO_DIR     where the corpus, cache and report go (default: BUILD_DIR/demo)
#   AHMSA_DEMO_EPOCHS  epochs per fold (default 6: the synthetic corpus is learnt by then)
#   AHMSA_THREADS      CPU threads (default: all cores)
set -euo pipefail
BUILD=${1:-build}
AHMSA="$BUILD/ahmsa"
DEMO=${AHMSA_DEMO_DIR:-$BUILD/demo}
[ -x "$AHMSA" ] || { echo "demo: $AHMSA not found; build first (make build)" >&2; exit 1; }
mkdir -p "$DEMO"
t0=$(date +%s)
THREADS=()
[ -n "${AHMSA_THREADS:-}" ] && THREADS=(--threads "$AHMSA_THREADS")

# 1. Synthetic corpus: 20 subjects x 9 clips (3 per class), CASME II layout + coding sheet.
if [ ! -f "$DEMO/synth/CASME2-coding-synthetic.csv" ]; then
  echo "== 1/3 synthetic corpus -> $DEMO/synth"
  rm -rf "$DEMO/synth"
  "$AHMSA" synth --out "$DEMO/synth" --subjects 20 --clips-per-class 3 --seed 1
else
  echo "== 1/3 synthetic corpus: $DEMO/synth (already there)"
fi

# 2. Flow cache: TV-L1 onset -> apex flow, optical strain, 28x28 (u, v, os) images.
echo "== 2/3 flow cache -> $DEMO/cache"
# A cache or run left by an older ahmsa whose flow or training settings differ is refused by prepare /
# train (they never mix results); the demo then starts that stage afresh instead of stopping.
fresh_if_refused() {  # fresh_if_refused DIR COMMAND...: runs COMMAND; if it refuses DIR, removes DIR and reruns
  local dir=$1 err
  shift
  err=$(mktemp)
  if "$@" 2> >(tee "$err" >&2); then rm -f "$err"; return 0; fi
  sleep 0.2  # let tee finish writing
  if grep -qE "made with other parameters|holds a run with other settings" "$err"; then
    rm -f "$err"
    echo "demo: $dir was made by another version or settings: starting it afresh"
    rm -rf "$dir"
    "$@"
  else
    rm -f "$err"
    return 1
  fi
}
fresh_if_refused "$DEMO/cache" "$AHMSA" prepare --dataset casme2 --root "$DEMO/synth" \
  --annotations "$DEMO/synth/CASME2-coding-synthetic.csv" --out "$DEMO/cache" --quiet "${THREADS[@]}"

# 3. LOSO training of the default AHMSA-Net (the spec's model, 1,128,950 parameters): one fold per
#    subject (20), the model re-initialised per fold, the last epoch of a fixed budget scored.
#    6 epochs of batch 16 keep the whole demo, build included, well inside 15 minutes on 2 cores.
EPOCHS=${AHMSA_DEMO_EPOCHS:-6}
RUN="$DEMO/run"
echo "== 3/3 LOSO training (AHMSA-Net, default config, $EPOCHS epochs of batch 16) -> $RUN"
fresh_if_refused "$RUN" "$AHMSA" train --cache "$DEMO/cache" --out "$RUN" --split loso --seed 1 --epochs "$EPOCHS" \
  --batch 16 "${THREADS[@]}"

t1=$(date +%s)
echo
echo "demo: done in $((t1 - t0)) s (after the build). Chance on this balanced 3-class corpus: UF1 = UAR = accuracy = 0.33."
echo "With real data: ahmsa prepare --dataset ... --out CACHE, then ahmsa train --cache CACHE --out RUN (README, docs/TRAINING.md)."
