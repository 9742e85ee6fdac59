#!/usr/bin/env bash
# The size figures of docs/EMBEDDING.md, for a minimal build folder (AHMSA_MINIMAL=ON, where
# ahmsa_classify is built): the C example's sections as `size` reports them, linked as CMake links it
# (the C and C++ runtime shared) and fully static (-static), and the .text that each ahmsa archive
# contributes to the static program (from the linker's map). Works for the aarch64 build folder too.
#   scripts/embed_size.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(realpath "$1")
cd "$dir"
[ -x ahmsa_classify ] || { echo "embed_size: no ahmsa_classify in $dir (build that target first)"; exit 1; }
SIZE=size
machine=x86-64
if [ "$(od -An -tx2 -j18 -N2 ahmsa_classify | tr -d ' ')" = 00b7 ]; then  # ELF e_machine: AArch64
  SIZE=aarch64-linux-gnu-size
  machine=aarch64
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
link=$(cat CMakeFiles/ahmsa_classify.dir/link.txt)
eval "${link/ -o ahmsa_classify / -o $tmp/static -static -Wl,-Map,$tmp/static.map }"
echo "embed_size: $machine"
echo "C example as built (runtime shared), then fully static:"
$SIZE ahmsa_classify "$tmp/static" | sed "s|$tmp/||"
echo ".text per archive in the static program (bytes):"
awk -f "$here/lib/map_text.awk" "$tmp/static.map"
