#!/usr/bin/env bash
# GPU checks for a lent H100/H200, as one script (docs/BENCHMARKS.md records what it printed).
#
#   bash scripts/device_check.sh prepare   # here, before the device call: copies into .device/ (ignored)
#                                          # the stb headers and the test data the GPU tests read
#   bash scripts/device_check.sh           # on the device machine (run with carry [".device"]): builds the
#                                          # CUDA targets without OpenCV, runs the CUDA tests for real,
#                                          # compute-sanitizer memcheck on them, then the GPU benchmarks
# Everything printed is also written under $OUT (the device tool returns that folder), default out/device.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == prepare ]]; then
  shared=${AHMSA_SHARED:-../shared}
  rm -rf .device && mkdir -p .device/shared/data/faces/kphotoalbum .device/shared/data/flow
  cp -r /usr/include/stb .device/
  cp -r /usr/include/CLI /usr/include/nlohmann .device/  # header-only: CLI11 and nlohmann-json
  mkdir -p .device/zlib && cp /usr/include/zlib.h /usr/include/zconf.h .device/zlib/  # in case zlib1g-dev is missing there
  cp "$shared/data/faces/kphotoalbum/jesper_2.jpg" .device/shared/data/faces/kphotoalbum/
  cp "$shared/data/faces/astronaut.png" .device/shared/data/faces/
  cp "$shared/data/flow/grove3.png" "$shared/data/flow/grove3.flo" .device/shared/data/flow/
  du -sh .device
  exit 0
fi

[[ -d .device/shared ]] || { echo "device_check: .device/ is missing: run 'bash scripts/device_check.sh prepare' here and carry .device" >&2; exit 2; }
OUT=${OUT:-out/device}
mkdir -p "$OUT"
log() { tee -a "$OUT/device_check.txt"; }
date -u | log
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true; } | log
{ nvcc --version 2>&1 || true; } | tail -1 | log

jobs=$(nproc)
zlib=()
if [[ ! -f /usr/include/zlib.h ]]; then  # no zlib headers there: the carried ones and the runtime library
  libz=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
  echo "zlib: headers from .device/zlib, library ${libz:-not found}" | log
  zlib=(-DZLIB_INCLUDE_DIR="$PWD/.device/zlib" -DZLIB_LIBRARY="$libz")
fi
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DAHMSA_WITH_OPENCV=OFF -DCMAKE_CUDA_ARCHITECTURES="80;90" \
  -DAHMSA_SHARED_DIR="$PWD/.device/shared" "${zlib[@]}" > "$OUT/cmake.txt" 2>&1 || { tail -30 "$OUT/cmake.txt"; exit 1; }
grep -E "ahmsa: (CUDA|OpenCV)" "$OUT/cmake.txt" | log
cmake --build build-device -j"$jobs" --target test_flow_batch ahmsa > "$OUT/build.txt" 2>&1 || { tail -40 "$OUT/build.txt"; exit 1; }

status=0
echo "== test_flow_batch (CUDA case must run, not skip)" | log
./build-device/test_flow_batch 2>&1 | log || status=1
if grep -q "CUDA case skipped" "$OUT/device_check.txt"; then echo "device_check: the GPU was not usable" | log; status=1; fi

if command -v compute-sanitizer > /dev/null; then
  # A small batch: memcheck slows every launch down, and the launch count does not depend on the batch.
  echo "== compute-sanitizer memcheck: tvl1_batch_cuda on 4 pairs (ahmsa bench flow --batch 4)" | log
  compute-sanitizer --tool memcheck --error-exitcode 3 ./build-device/ahmsa bench flow --batch 4 --reps 1 \
    --only "tvl1 ipol" --shared "$PWD/.device/shared" 2>&1 | tail -15 | log || status=1
fi

echo "== ahmsa bench flow --batch 442" | log
./build-device/ahmsa bench flow --batch 442 --reps 3 --shared "$PWD/.device/shared" 2>&1 | log || status=1
exit $status
