#!/usr/bin/env bash
# Installs the Debian packages that only the benchmarks need (peers to compare histoplan against and
# timing tools); building and testing histoplan never needs them (scripts/install-deps.sh covers that).
# Safe to run twice: packages already installed are skipped, and apt-get update runs only when
# something is missing.
set -euo pipefail

packages=(
  # peer engine: OpenCV's DNN module reading the same ONNX file (imports under /usr/bin/python3)
  python3-opencv
  # peer engine and reference weights: PyTorch eager on the CPU (oneDNN)
  python3-torch python3-torchvision python3-numpy
  # command-line timing with warm-up and repeated runs, for whole-pipeline benchmarks
  hyperfine
  # per-symbol CPU profiles of the histoplan bench (perf record / perf report)
  linux-perf
  # peak resident memory of a child process (/usr/bin/time -v)
  time
)

. "$(dirname "$0")/lib/apt-install-missing.sh"
apt_install_missing install-bench-deps "${packages[@]}"
