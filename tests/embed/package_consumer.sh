#!/usr/bin/env bash
# CTest package_consumer: `cmake --install` of this build into a fresh prefix, then the examples/ project
# configured and built from scratch against it with find_package(ahmsa), and the C example once more by
# hand through pkg-config. All three programs must print what the in-tree C example prints.
#   package_consumer.sh BUILD_DIR SOURCE_DIR IN_TREE_CLASSIFY FLOW_DATA_DIR
set -euo pipefail
build=$1 src=$2 in_tree=$3 data=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/ahmsa_package.XXXXXX")
trap 'rm -rf "$work"' EXIT
model=$src/tests/fixtures/tiny_model.safetensors
pair=("$data/basketball1.png" "$data/basketball2.png" 64)

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in include/ahmsa/ahmsa.h include/ahmsa/infer/classifier.h lib/libahmsa_infer.a lib/libahmsa_tensor.a \
         lib/cmake/ahmsa/ahmsaConfig.cmake lib/cmake/ahmsa/ahmsaConfigVersion.cmake lib/cmake/ahmsa/ahmsaTargets.cmake \
         lib/pkgconfig/ahmsa.pc; do
  [ -f "$work/prefix/$f" ] || { echo "FAIL: the install has no $f"; exit 1; }
done
if ls "$work/prefix/lib" | grep -E '_common|_sim'; then echo "FAIL: object libraries or simulator twins installed"; exit 1; fi

# CMake consumer, configured with only the prefix to go on.
cmake -S "$src/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
grep 'ahmsa 0' "$work/configure.log"
cmake --build "$work/examples" -j 2 >"$work/build.log" || { cat "$work/build.log"; exit 1; }
# The package reports ahmsa::train when this build has it.
grep -q 'add_library(ahmsa::train STATIC IMPORTED)' "$work/prefix/lib/cmake/ahmsa/ahmsaTargets.cmake" ||
  { echo "FAIL: no ahmsa::train in the package"; exit 1; }

# pkg-config consumer: the C example compiled as C and linked with what ahmsa.pc says.
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
cc -std=c11 -O2 -o "$work/classify_pc" "$src/examples/classify.c" $(pkg-config --cflags ahmsa) $(pkg-config --libs ahmsa)

same() {  # same NAME EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then printf 'FAIL: %s differs from the in-tree C example:\n%s\n---\n%s\n' "$1" "$2" "$3"; exit 1; fi
}
for args in "$src/tests/fixtures/tiny_uvos.png" "${pair[*]}"; do
  # shellcheck disable=SC2086
  want=$("$in_tree" "$model" $args | grep -v '^model:')
  # shellcheck disable=SC2086
  same "examples/classify (find_package)" "$want" "$("$work/examples/classify" "$model" $args | grep -v '^model:')"
  # shellcheck disable=SC2086
  same "classify (pkg-config)" "$want" "$("$work/classify_pc" "$model" $args | grep -v '^model:')"
  echo "$want"
done
want=$("$in_tree" "$model" "${pair[@]}" | sed -n '/^probabilities:/,/^prediction:/p' | grep -v '^probabilities:\|^prediction:' | sed 's/  <-$//')
same "examples/classify_cpp" "$want" "$("$work/examples/classify_cpp" "$model" "${pair[@]}")"
echo "OK"
