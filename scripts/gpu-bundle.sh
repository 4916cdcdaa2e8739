#!/usr/bin/env bash
# Builds histoplan with CUDA (Release) for the GPU machine and collects what it needs there.
#
#   scripts/gpu-bundle.sh            run here, on the build machine (no GPU needed)
#
# Output (git ignores .gpu/):
#   .gpu/build/       the CMake build tree (stays here; too big to carry)
#   .gpu/bin/         histoplan and the CUDA test programs, stripped
#   .gpu/lib/         the Debian shared libraries they load that a plain Ubuntu image lacks
#                     (OpenBLAS, protobuf-c, cJSON, libpng, libjpeg, libtiff and their own
#                     dependencies); never cuDNN, cuBLAS or the CUDA runtime (the GPU machine
#                     has them in its PyTorch packages; the runtime is linked statically)
#   .gpu/lib/compat/  libstdc++ and libgcc_s, used there only when the image's are too old
#   .gpu/bundle.tar.xz  bin/, lib/, the test data and SR references, xz-compressed (gzip left it
#                       over the carry limit once the SR references joined; xz is ~35% smaller)
# Carry .gpu/bundle.tar.xz (or .gpu/bin and .gpu/lib) to the GPU machine and run
# scripts/gpu-check.sh there from the repository root; it unpacks the archive itself.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.gpu
# what travels is the compressed archive, beside the working tree, within 64 MiB together
limit_mib=48

nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [ ! -x "$nvcc" ]; then
  echo "gpu-bundle: no nvcc at $nvcc (set CUDACXX)" >&2
  exit 1
fi

# H100 and H200 are sm_90; HP_GPU_ARCHS overrides (e.g. "80;90" to also run on A100).
archs=${HP_GPU_ARCHS:-90}
mkdir -p "$out"
cmake -S . -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHP_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$archs" >"$out.cmake.log" 2>&1 || {
  cat "$out.cmake.log" >&2
  exit 1
}
mv -f "$out.cmake.log" "$out/build/gpu-bundle-cmake.log"
if ! grep -q "histoplan: CUDA backend ON" "$out/build/gpu-bundle-cmake.log"; then
  echo "gpu-bundle: CMake did not enable the CUDA backend (see $out/build/gpu-bundle-cmake.log)" >&2
  exit 1
fi
cmake --build "$out/build" -j"$(nproc)"

rm -rf "$out/bin" "$out/lib"
mkdir -p "$out/bin" "$out/lib/compat"

# The programs the check runs: the CLI, every test whose name says CUDA or GPU, the pinned
# host memory test, and the tile reading benchmark.
progs=("$out/build/histoplan")
# the tile loader alone (decode throughput, next to end-to-end and model-only)
[ -x "$out/build/benchmarks/bench_tile_read" ] && progs+=("$out/build/benchmarks/bench_tile_read")
for t in "$out"/build/tests/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  case "$(basename "$t")" in
    *cuda* | *gpu* | *host_memory*) progs+=("$t") ;;
  esac
done
for p in "${progs[@]}"; do
  cp "$p" "$out/bin/"
  strip --strip-unneeded "$out/bin/$(basename "$p")" 2>/dev/null || true
done

# Libraries: everything ldd resolves except the C runtime that every Linux image has and the
# NVIDIA libraries the GPU machine brings itself.
is_base() {
  case "$1" in
    linux-vdso.so* | ld-linux*.so* | libc.so* | libm.so* | libdl.so* | libpthread.so* | \
      librt.so* | libutil.so* | libresolv.so*) return 0 ;;
  esac
  return 1
}
is_nvidia() {
  case "$1" in
    libcudnn* | libcublas* | libcudart* | libcuda.so* | libnvrtc* | libnvJitLink* | \
      libcufft* | libcurand* | libcusparse* | libcusolver* | libnvToolsExt*) return 0 ;;
  esac
  return 1
}
declare -A seen=()
for p in "$out"/bin/*; do
  while read -r name _ path _; do
    [ -n "${path:-}" ] && [ -f "$path" ] || continue
    [ -z "${seen[$name]:-}" ] || continue
    seen[$name]=1
    if is_base "$name" || is_nvidia "$name"; then
      continue
    fi
    case "$name" in
      libstdc++.so* | libgcc_s.so*) cp -L "$path" "$out/lib/compat/$name" ;;
      *) cp -L "$path" "$out/lib/$name" ;;
    esac
  done < <(ldd "$p" | grep "=>")
done
strip --strip-unneeded "$out"/lib/*.so* "$out"/lib/compat/*.so* 2>/dev/null || true

# What the binaries ask of the C library: the GPU image's glibc must be at least this.
glibc_max=$(for p in "$out"/bin/* "$out"/lib/*.so*; do objdump -T "$p" 2>/dev/null; done |
  grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -k3,3n -u | tail -1)
echo "$glibc_max" >"$out/lib/GLIBC_REQUIRED"

echo "gpu-bundle: programs:"
ls -l "$out/bin" | tail -n +2 | awk '{printf "  %-32s %8.1f MiB\n", $9, $5 / 1048576}'
echo "gpu-bundle: libraries ($(ls "$out/lib" | grep -c '\.so') + $(ls "$out/lib/compat" | grep -c '\.so') compat), needs $glibc_max or later"
echo "gpu-bundle: .gpu/bin + .gpu/lib = $(du -sm "$out/bin" "$out/lib" | awk '{s += $1} END {print s}') MiB unpacked"
# The CUDA stain test compares against the CPU on real H&E patches; the GPU machine has no
# ../shared, so the patches it reads travel inside the bundle (.gpu/ is ignored: never committed).
rm -rf "$out/shared"
patches=../shared/data/real/patches
if [ -d "$patches" ]; then
  mkdir -p "$out/shared/data/real/patches"
  for f in $(grep -o '"[A-Za-z0-9_]*\.png"' tests/unit/test_cuda_stain.c | tr -d '"'); do
    cp "$patches/$f" "$out/shared/data/real/patches/" || echo "gpu-bundle: no $patches/$f" >&2
  done
fi
# The super-resolution models' references: a real H&E crop and each zoo SR model's float32
# output for it from PyTorch (scripts/sr_onnx_torch.py), computed here, because the GPU machine
# has neither ../shared nor, perhaps, the onnx package; gpu-check.sh compares the CUDA backend's
# fp32, fp16 and bf16 runs with them.
rm -rf "$out/sr-ref"
he=$patches/TCGA-HE-7130-01Z-00-DX1_region_1000px.png
if [ -f "$he" ] && /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then
  mkdir -p "$out/sr-ref"
  /usr/bin/python3 - "$he" "$out/sr-ref" models/zoo/histoplan-sr-*.onnx <<'PY'
import os, sys
import numpy as np
from PIL import Image
sys.path.insert(0, "scripts")
import sr_onnx_torch
he, dst, models = sys.argv[1], sys.argv[2], sys.argv[3:]
x = np.asarray(Image.open(he).convert("RGB"))[300:396, 410:506].transpose(2, 0, 1)[None].astype(np.float32) / 255
np.save(os.path.join(dst, "input.npy"), x)
for m in models:
    name = os.path.basename(m)[:-5]
    np.save(os.path.join(dst, name + ".npy"), sr_onnx_torch.run(sr_onnx_torch.load(m), x))
    print("gpu-bundle: SR reference", name)
PY
else
  echo "gpu-bundle: no SR references ($he, or Debian's torch and onnx, missing)" >&2
fi
rm -f "$out/bundle.tar.gz"
tar -C "$out" -cJf "$out/bundle.tar.xz" bin lib $( [ -d "$out/shared" ] && echo shared) $( [ -d "$out/sr-ref" ] && echo sr-ref)
size_mib=$(du -m "$out/bundle.tar.xz" | cut -f1)
echo "gpu-bundle: .gpu/bundle.tar.xz = ${size_mib} MiB (limit ${limit_mib} MiB; carry this)"
if [ "$size_mib" -gt "$limit_mib" ]; then
  echo "gpu-bundle: the bundle is over ${limit_mib} MiB" >&2
  exit 1
fi
