#!/usr/bin/env bash
# GPU checks for a lent H100/H200, as one script (docs/BENCHMARKS.md records what it printed).
#
#   bash scripts/device_check.sh prepare   # here, before the device call: copies into .device/ (ignored)
#                                          # the stb, CLI11, nlohmann and zlib headers and the test data
#   bash scripts/device_check.sh           # on the device machine (run with carry [".device"]), < 8 min:
#     1. builds the CUDA targets with nvcc (sm_80, sm_90) without OpenCV;
#     2. runs every CUDA test for real (tests/test_cuda_*: the kernels, the op registry, the model against
#        PyTorch's fixture, LOSO against the CPU, batched TV-L1) -- a test that skips fails the check;
#     3. compute-sanitizer memcheck and racecheck on the op tests and on one training step;
#     4. `ahmsa bench model --device cuda` beside tools/reference/bench_torch.py --device cuda (eager and
#        torch.compile) in the same call, and the batched TV-L1 bench;
#     5. the composite-sized LOSO: 68 folds x 30 epochs on a synthetic corpus of 68 subjects, timed.
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
cuda_tests=(test_cuda_kernels test_cuda_kernels_gemm test_cuda_ops test_cuda_tensor_devices test_cuda_model
            test_cuda_loso test_cuda_flow)
cmake --build build-device -j"$jobs" --target "${cuda_tests[@]}" ahmsa > "$OUT/build.txt" 2>&1 || { tail -40 "$OUT/build.txt"; exit 1; }
grep -E "registers|spill" "$OUT/build.txt" | sort | uniq -c | sort -rn | head -5 | log || true

status=0
for t in "${cuda_tests[@]}"; do
  echo "== $t (must run on the GPU, not skip)" | log
  ./build-device/$t 2>&1 | tail -6 | log || status=1
  if tail -6 "$OUT/device_check.txt" | grep -q "skipped"; then echo "device_check: $t skipped: the GPU was not usable" | log; status=1; fi
done

if command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool: the op registry on CUDA" | log
    compute-sanitizer --tool $tool --error-exitcode 3 ./build-device/test_cuda_ops -tc="every registry op*" 2>&1 | tail -8 | log || status=1
    echo "== compute-sanitizer $tool: one training step at batch 16" | log
    compute-sanitizer --tool $tool --error-exitcode 3 ./build-device/ahmsa bench model --device cuda --batches 16 --steps 1 2>&1 | tail -8 | log || status=1
  done
  echo "== compute-sanitizer memcheck: tvl1_batch_cuda on 4 pairs (ahmsa bench flow --batch 4)" | log
  compute-sanitizer --tool memcheck --error-exitcode 3 ./build-device/ahmsa bench flow --batch 4 --reps 1 \
    --only "tvl1 ipol" --shared "$PWD/.device/shared" 2>&1 | tail -8 | log || status=1
fi

echo "== training step and batch-1 inference: ahmsa, then PyTorch eager and compiled, same card" | log
./build-device/ahmsa bench model --device cuda --batches 64,256 --steps 20 2>&1 | log || status=1
if python3 -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
  python3 tools/reference/bench_torch.py --device cuda --batches 64,256 2>&1 | log || status=1
  timeout 240 python3 tools/reference/bench_torch.py --device cuda --compile --batches 64,256 2>&1 | log || status=1
else
  echo "device_check: no PyTorch with CUDA here" | log
fi

echo "== ahmsa bench flow --batch 442" | log
./build-device/ahmsa bench flow --batch 442 --reps 3 --shared "$PWD/.device/shared" 2>&1 | log || status=1

echo "== composite-sized LOSO: 68 subjects, 68 folds x 30 epochs on CUDA" | log
L=build-device/loso68
rm -rf "$L"
./build-device/ahmsa synth --out "$L/synth" --subjects 68 --clips-per-class 2 --seed 1 > /dev/null
./build-device/ahmsa prepare --dataset casme2 --root "$L/synth" --annotations "$L/synth/CASME2-coding-synthetic.csv" \
  --out "$L/cache" --quiet > /dev/null
start=$(date +%s%N)
timeout 300 ./build-device/ahmsa train --cache "$L/cache" --out "$L/run" --split loso --epochs 30 --device cuda \
  2>&1 | tail -4 | log || status=1
echo "LOSO wall time: $(( ($(date +%s%N) - start) / 1000000 )) ms" | log
exit $status
