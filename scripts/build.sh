#!/usr/bin/env bash
# Configures and builds histoplan into build/ (or $HP_BUILD_DIR). Extra arguments go to cmake,
# e.g. scripts/build.sh -DHP_CUDA=OFF. CUDA is used when nvcc and cuDNN are found.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${HP_BUILD_DIR:-build}
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
else
  cmake -S . -B "$build" "$@" >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
