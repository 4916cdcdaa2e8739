#!/usr/bin/env bash
# Installs every Debian package that building and testing histoplan needs. Safe to run twice:
# packages already present are skipped, and apt is only asked when something is missing.
# The CUDA toolkit (nvcc, cuDNN, cuBLAS) is not a Debian package here: it is detected, never installed;
# without it the build simply leaves the CUDA backend out and says so.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config ninja-build
  # model loading: protobuf-c and Debian's onnx.proto (libonnx-dev) the loader is generated from
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev
  # CPU convolution and GEMM
  libopenblas-dev
  # model cards, findings and reports as JSON; SHA-256 of model files
  libcjson-dev libssl-dev
  # images: PNG, JPEG, TIFF
  libpng-dev libjpeg62-turbo-dev libtiff-dev
  # tests: ONNX's conformance data, PyTorch references, fuzzing (clang's libFuzzer)
  libonnx-testdata python3-torch python3-torchvision python3-onnx python3-numpy python3-jsonschema
  clang
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: CUDA toolkit found ($( (command -v nvcc || echo /usr/local/cuda/bin/nvcc) )); the CUDA backend will be built"
else
  echo "install-deps: no CUDA toolkit found; histoplan will be built with the CPU backend only"
fi
