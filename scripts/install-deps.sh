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
  # image processing (resampling, morphology, Otsu, components, outlines, colour spaces): only
  # OpenCV's core and imgproc are linked, behind io/cv_image.h
  libopencv-dev
  # BACH Part B annotation XML (eval-wsi)
  libxml2-dev
  # tests: ONNX's conformance data, PyTorch references, fuzzing (clang's libFuzzer)
  libonnx-testdata python3-torch python3-torchvision python3-onnx python3-numpy python3-jsonschema python3-pil
  python3-openslide python3-opencv
  # metrics references for histoplan eval (scikit-learn computes the same figures independently)
  python3-sklearn
  # service tests: the OpenAPI file (YAML) and its schemas; benchmarks: HTTP load (wrk)
  python3-yaml wrk
  # the lab batch service (histoplan serve/worker): HTTP and TLS (libmicrohttpd is built with
  # GnuTLS in Debian), the job store (SQLite; PostgreSQL through libpq for many machines), and
  # PostgreSQL 15's server binaries, which the tests start as a private cluster
  libmicrohttpd-dev libgnutls28-dev libsqlite3-dev libpq-dev postgresql-15
  # cohorts on a cluster: the test starts a private single-node Slurm (controller, node daemon,
  # client commands, and munge for its authentication) to run scripts/slurm/analyze-array.sbatch
  slurmctld slurmd slurm-client munge
  # callbacks to lab systems (HTTP and HTTPS client)
  libcurl4-openssl-dev
  # legends on pictures (class keys, colour ramps, scale bars, slide ids): cairo and its font
  libcairo2-dev fonts-dejavu-core
  # tests: the printed report's first page (headless Chromium to PDF, poppler to read it)
  chromium poppler-utils
  # fuzzing (clang's libFuzzer)
  clang
  # test-time validators from npm (the official FHIR R4 JSON schema), the viewer's
  # OpenSeadragon and its browser tests (playwright-core): Node.js and npm
  nodejs npm
  # (chromium, listed above, also runs the viewer's browser tests through playwright-core)
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

# npm packages (package-lock.json pins them): in tests/js the official HL7 FHIR R4 JSON schema
# and its validator, and playwright-core; in server/web OpenSeadragon, which CMake copies into
# the viewer's assets. Installed again only when a lock file changed.
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
for js_dir in "$root_dir/tests/js" "$root_dir/server/web"; do
  if [ -f "$js_dir/package-lock.json" ]; then
    stamp="$js_dir/node_modules/.histoplan-lock.sha256"
    want="$(sha256sum "$js_dir/package-lock.json" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
      echo "install-deps: npm ci in ${js_dir#"$root_dir"/}"
      (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
      echo "$want" > "$stamp"
    fi
  fi
done

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: CUDA toolkit found ($( (command -v nvcc || echo /usr/local/cuda/bin/nvcc) )); the CUDA backend will be built"
else
  echo "install-deps: no CUDA toolkit found; histoplan will be built with the CPU backend only"
fi
