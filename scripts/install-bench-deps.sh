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

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-bench-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-bench-deps: all benchmark packages present"
fi
