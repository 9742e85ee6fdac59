#!/usr/bin/env bash
# CTest c_example_vs_predict: the C example (C API, pair mode) and `ahmsa predict --crop none` print the
# same class probabilities for the same checkpoint and onset/apex pair (grey frames, so that both see
# the same 8-bit pixels), at two crop sizes.
#   c_example_vs_predict.sh AHMSA_CLASSIFY AHMSA MODEL FLOW_DATA_DIR
set -euo pipefail
classify=$1 ahmsa=$2 model=$3 data=$4
for crop in 128 64; do
  c=$("$classify" "$model" "$data/basketball1.png" "$data/basketball2.png" "$crop" | sed -n '/^probabilities:/,/^prediction:/p' | grep -v '^probabilities:')
  p=$("$ahmsa" predict --model "$model" --crop none --crop-size "$crop" --device cpu "$data/basketball1.png" "$data/basketball2.png" |
      sed -n '2,$p')
  echo "crop $crop, C example:"; echo "$c"
  echo "crop $crop, ahmsa predict:"; echo "$p"
  [ -n "$c" ] && [ "$c" = "$p" ] || { echo "FAIL: they differ"; exit 1; }
done
echo "OK"
