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
  # legends on pictures (class keys, colour ramps, scale bars, slide ids): cairo and its font
  libcairo2-dev fonts-dejavu-core
  # tests: ONNX's conformance data, PyTorch references, fuzzing (clang's libFuzzer)
  libonnx-testdata python3-torch python3-torchvision python3-onnx python3-numpy python3-jsonschema python3-pil
  python3-openslide
  # tests: the printed report's first page (headless Chromium to PDF, poppler to read it)
  chromium poppler-utils
  clang
  # test-time validators from npm (the official FHIR R4 JSON schema): Node.js and npm
  nodejs npm
)

. "$(dirname "$0")/lib/apt-install-missing.sh"
# Node.js may come from elsewhere than Debian (a newer build on the PATH): then it is kept.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  kept=()
  for p in "${packages[@]}"; do
    case "$p" in nodejs | npm) ;; *) kept+=("$p") ;; esac
  done
  packages=("${kept[@]}")
fi
apt_install_missing install-deps "${packages[@]}"

# npm packages the tests use (tests/js/package-lock.json pins them): the official HL7 FHIR R4
# JSON schema and its validator. Installed again only when the lock file changed.
js_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/js"
if [ -f "$js_dir/package-lock.json" ]; then
  stamp="$js_dir/node_modules/.histoplan-lock.sha256"
  want="$(sha256sum "$js_dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "install-deps: npm ci in tests/js"
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
fi

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: CUDA toolkit found ($( (command -v nvcc || echo /usr/local/cuda/bin/nvcc) )); the CUDA backend will be built"
else
  echo "install-deps: no CUDA toolkit found; histoplan will be built with the CPU backend only"
fi
