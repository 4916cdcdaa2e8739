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
  # images: PNG, JPEG, TIFF; whole-slide images through OpenSlide
  libpng-dev libjpeg62-turbo-dev libtiff-dev libopenslide-dev
  # tests: ONNX's conformance data, PyTorch references, fuzzing (clang's libFuzzer)
  libonnx-testdata python3-torch python3-torchvision python3-onnx python3-numpy python3-jsonschema python3-pil
  python3-openslide
  clang
)

. "$(dirname "$0")/lib/apt-install-missing.sh"
apt_install_missing install-deps "${packages[@]}"

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: CUDA toolkit found ($( (command -v nvcc || echo /usr/local/cuda/bin/nvcc) )); the CUDA backend will be built"
else
  echo "install-deps: no CUDA toolkit found; histoplan will be built with the CPU backend only"
fi
