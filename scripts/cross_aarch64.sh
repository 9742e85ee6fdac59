#!/usr/bin/env bash
# The minimal inference build (AHMSA_MINIMAL=ON, AHMSA_THREADS=OFF: docs/EMBEDDING.md) cross-compiled
# for aarch64, its C example run under QEMU user emulation, and its logits compared with the x86-64
# build's on the tiny fixture checkpoint: a (u, v, os) image and an onset/apex pair (TV-L1 + strain on
# the Arm side too). They must agree within 1e-5. Installs g++-aarch64-linux-gnu and qemu-user when
# missing (Debian 12).
#
#   scripts/cross_aarch64.sh [WORK_DIR]      (default build-cross; it holds both builds)
# AHMSA_X86_CLASSIFY=path/to/ahmsa_classify reuses an x86-64 C example already built (CI passes the
# one of `make test`) instead of building the minimal x86-64 one too.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(realpath -m "${1:-build-cross}")
SHARED=${AHMSA_SHARED_DIR:-../shared}
MODEL=tests/fixtures/tiny_model.safetensors
UVOS=tests/fixtures/tiny_uvos.png
ONSET=$SHARED/data/flow/basketball1.png
APEX=$SHARED/data/flow/basketball2.png
JOBS=${JOBS:-$(nproc)}
start=$SECONDS

need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  echo "cross_aarch64: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The header-only libraries for the cross compiler: a folder holding only stb/ and nlohmann/ (giving it
# /usr/include would put the x86-64 C library's headers before its own).
mkdir -p "$WORK/headers"
ln -sfn /usr/include/stb "$WORK/headers/stb"
ln -sfn /usr/include/nlohmann "$WORK/headers/nlohmann"
flags=(-DCMAKE_BUILD_TYPE=Release -DAHMSA_MINIMAL=ON -DAHMSA_THREADS=OFF
       -DSTB_INCLUDE_DIR="$WORK/headers" -DNLOHMANN_JSON_INCLUDE_DIR="$WORK/headers")
if command -v ccache >/dev/null; then
  flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

build() {  # build DIR [cmake args...]: configure and build the C example (and what it links) only
  local dir=$1
  shift
  cmake -S . -B "$dir" "${flags[@]}" "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" -j "$JOBS" --target ahmsa_classify >"$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; exit 1; }
}

X86=${AHMSA_X86_CLASSIFY:-}
if [ -z "$X86" ]; then
  build "$WORK/x86_64"
  X86=$WORK/x86_64/ahmsa_classify
fi
t0=$SECONDS
build "$WORK/aarch64" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
ARM=$WORK/aarch64/ahmsa_classify
# e_machine of the ELF header: 0xb7 is AArch64.
[ "$(od -An -tx2 -j18 -N2 "$ARM" | tr -d ' ')" = 00b7 ] || { echo "cross_aarch64: FAIL: $ARM is not an aarch64 program"; exit 1; }
echo "cross_aarch64: built the aarch64 C example in $((SECONDS - t0)) s"
QEMU=(qemu-aarch64 -L /usr/aarch64-linux-gnu)

logits() { grep '^logits:' | cut -d' ' -f2-; }
# compare NAME ARGS...: the two builds' logits on the same input, at most 1e-5 apart.
compare() {
  local name=$1
  shift
  local t=$SECONDS x a
  x=$("$X86" "$@" | logits)
  t=$SECONDS
  a=$("${QEMU[@]}" "$ARM" "$@" | logits)
  echo "cross_aarch64: $name: x86-64 [$x]  aarch64 [$a]  ($((SECONDS - t)) s under QEMU)"
  awk -v x="$x" -v a="$a" 'BEGIN {
    n = split(x, X, " "); m = split(a, A, " ");
    if (n == 0 || n != m) { print "cross_aarch64: FAIL: " n " vs " m " logits"; exit 1 }
    worst = 0;
    for (i = 1; i <= n; ++i) { d = X[i] - A[i]; if (d < 0) d = -d; if (d > worst) worst = d }
    printf "cross_aarch64: largest difference %.3g\n", worst;
    if (worst > 1e-5) { print "cross_aarch64: FAIL: above 1e-5"; exit 1 }
  }'
}
compare "(u, v, os) image" "$MODEL" "$UVOS"
compare "onset/apex pair" "$MODEL" "$ONSET" "$APEX"
echo "cross_aarch64: OK in $((SECONDS - start)) s"
