#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
# Tests that need a GPU exit 77 and are reported as skipped on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh "$@"
ctest --test-dir "${HP_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" --timeout 1800
