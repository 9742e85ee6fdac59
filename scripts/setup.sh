#!/usr/bin/env bash
# Installs the Debian packages the build needs, only those that are missing.
# Required: a C++17 compiler, CMake, make, doctest-dev, libstb-dev, zlib1g-dev, libcli11-dev (the command line),
# nlohmann-json3-dev (every JSON file the tools write and read).
# Optional (video decoding, face detection, flow cross-check): libopencv-dev; skip with AHMSA_NO_OPENCV=1.
# In CI (CI=true) also chromium, for the report.html rendering test.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in g++ cmake make pkg-config doctest-dev libstb-dev zlib1g-dev libcli11-dev nlohmann-json3-dev; do
  have_pkg "$p" || need+=("$p")
done
if [ "${AHMSA_NO_OPENCV:-0}" != 1 ]; then
  have_pkg libopencv-dev || need+=(libopencv-dev)
fi
# CI (CI=true): headless Chromium renders report.html in tests/test_report_chromium.cpp (elsewhere
# that test skips when Chromium is missing; install it with AHMSA_WITH_CHROMIUM=1).
if [ "${CI:-}" = true ] || [ "${AHMSA_WITH_CHROMIUM:-0}" = 1 ]; then
  have_pkg chromium || need+=(chromium)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: done"
