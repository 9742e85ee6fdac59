#!/usr/bin/env bash
# The sanitizer job: the whole test suite built with -fsanitize=address,undefined (leak checking on)
# in its own build folder and run through CTest, then an end-to-end run of the tool under the same
# sanitizers: synth -> prepare -> train (1 fold, 1 epoch, a small model) -> eval -> predict -> explain.
# Any ASan, UBSan or LeakSanitizer report fails the script.
#   scripts/sanitize.sh            (BUILD=build-asan, JOBS=2; CXX picks the compiler, default g++;
#                                   SANITIZE_CTEST_ARGS replaces the default "-E _no_avx2$|^test_tutorial$|^slurm_loso$")
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-asan}
JOBS=${JOBS:-2}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Line tables (-g1) are all the reports need; the simulated CUDA twins are left out (make test runs the
# CUDA code in the simulator; building it twice more here would double the job).
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS="-O1 -g1 $SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DAHMSA_WITH_CUDA=OFF -DAHMSA_WITH_SIM=OFF "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j "$JOBS" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# OpenCV's own one-time allocations (plugin registries, OpenCL probing) are not ours.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}

# Every test executable runs; the *_no_avx2 reruns of the flow tests (the same executables with the
# portable kernels, already run by `make test`), test_tutorial (docs/TUTORIAL.md trains the full model
# for 10 epochs; the end-to-end run below covers the same commands, explain included) and the Slurm
# test (daemons and job scheduling, run by `make test`; the processes it starts are those
# test_cli_multiprocess checks here) are left out by default to keep the job short.
CTEST_ARGS=${SANITIZE_CTEST_ARGS:--E _no_avx2\$|^test_tutorial\$|^slurm_loso\$}
echo "sanitize: ctest $CTEST_ARGS in $BUILD"
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS" $CTEST_ARGS)

echo "sanitize: end to end"
A="$BUILD/ahmsa"
E="$BUILD/e2e"
rm -rf "$E"
"$A" synth --out "$E/synth" --subjects 3 --clips-per-class 1 --size 64 --frames 6,8 --seed 1
"$A" prepare --dataset casme2 --root "$E/synth" --annotations "$E/synth/CASME2-coding-synthetic.csv" --crop none --out "$E/cache" --quiet
"$A" train --cache "$E/cache" --out "$E/run" --split loso --folds 1 --epochs 1 --batch 4 --seed 1 --quiet \
  --model-config "stem=8;channels=8,16;head_dim=8;reduction=2"
model=$(ls "$E"/run/*/model.safetensors | head -1)
"$A" eval --model "$model" --cache "$E/cache" --out "$E/eval"
clip=$(ls -d "$E"/synth/*/*/ | head -1)
frames=($(ls "$clip" | sort | head -2))
"$A" predict --model "$model" --crop none "$clip${frames[0]}" "$clip${frames[1]}"
"$A" explain --model "$model" --crop none "$clip${frames[0]}" "$clip${frames[1]}" -o "$E/explain.png" --json "$E/explain.json"
echo "sanitize: clean"
