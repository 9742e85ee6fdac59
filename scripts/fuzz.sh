#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (-fsanitize=fuzzer,address,undefined) in their own
# build folder, replays each target's regression corpus (every crashing input found so far, now
# fixed), then fuzzes each from its seed corpus for a fixed number of executions.
#   scripts/fuzz.sh                 build, replay, fuzz all six (the RUNS table, or FUZZ_RUNS, executions each)
#   scripts/fuzz.sh csv flo         only those targets
# Environment: BUILD (default build-fuzz), FUZZ_RUNS (executions per target; default: the RUNS table
# below, sized so the six runs take about a minute on 2 cores), JOBS (default 2).
# A finding leaves crash-*/leak-*/oom-* files in $BUILD/findings/<target>/ and fails the script;
# copy them to fuzz/regression/<target>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-fuzz}
# Executions per target: the image and flow-folder targets decode images, the others only parse.
declare -A RUNS=([safetensors]=50000 [xlsx]=40000 [csv]=50000 [flow_folder]=20000 [flo]=50000 [image]=20000)
JOBS=${JOBS:-2}
TARGETS=(safetensors xlsx csv flow_folder flo image)
[ $# -gt 0 ] && TARGETS=("$@")

if ! command -v clang++ >/dev/null; then  # Debian's clang brings libFuzzer
  echo "fuzz: installing clang"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# The libraries with coverage instrumentation (fuzzer-no-link), single-threaded (no OpenMP), no
# CUDA or OpenCV: the readers under test need neither.
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_CXX_FLAGS="-O1 -g $SAN -fsanitize=fuzzer-no-link" -DAHMSA_WITH_CUDA=OFF -DAHMSA_WITH_OPENCV=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target ahmsa_data ahmsa_model >/dev/null
libs=("$BUILD/libahmsa_data.a" "$BUILD/libahmsa_flow.a" "$BUILD/libahmsa_model.a" "$BUILD/libahmsa_tensor.a" -lz)
for t in "${TARGETS[@]}"; do
  clang++ -std=c++17 -O1 -g $SAN -fsanitize=fuzzer -I. -I"$BUILD/generated" \
    "fuzz/fuzz_$t.cpp" "${libs[@]}" -o "$BUILD/fuzz_$t"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz_$t"
  reg="fuzz/regression/$t"
  if compgen -G "$reg/*" >/dev/null; then  # replay: each input runs once and must not crash
    if ! "$bin" -rss_limit_mb=2048 -malloc_limit_mb=1024 "$reg"/* >"$BUILD/replay_$t.log" 2>&1; then
      echo "fuzz: $t: a regression input fails again (see $BUILD/replay_$t.log)"
      status=1
      continue
    fi
  fi
  # Fuzz from a scratch copy of the seeds (new corpus entries stay in the build folder) for RUNS
  # executions; a single allocation above 1 GB or an RSS above 2 GB counts as a finding.
  work="$BUILD/corpus/$t" findings="$BUILD/findings/$t"
  rm -rf "$work" "$findings"
  mkdir -p "$work" "$findings"
  cp "fuzz/corpus/$t"/* "$work"/
  runs=${FUZZ_RUNS:-${RUNS[$t]}}
  # Images may claim 10,000 pixels per byte (flow/image.h): short inputs keep each decode fast.
  max_len=4096
  [ "$t" = image ] && max_len=512
  start=$(date +%s)
  if "$bin" -runs="$runs" -seed=1 -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -artifact_prefix="$findings/" "$work" >"$BUILD/fuzz_$t.log" 2>&1; then
    echo "fuzz: $t: $runs runs clean in $(( $(date +%s) - start )) s"
  else
    echo "fuzz: $t: FINDING after $(( $(date +%s) - start )) s: $(ls "$findings") (log: $BUILD/fuzz_$t.log)"
    status=1
  fi
done
exit $status
