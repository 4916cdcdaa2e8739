#!/usr/bin/env bash
# The main job on its built-in default: installs what is missing, builds, then shows the engine
# on the bundled demo model (untrained weights: it demonstrates the engine, it does not diagnose).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
bin=${HP_BUILD_DIR:-build}/histoplan
model=models/zoo/histoplan-demo-densenet.onnx
"$bin" model info "$model"
shared=${HP_SHARED_DIR:-../shared}
img="$shared/data/real/bach/BACH_Invasive_sample.png"
if [ ! -f "$img" ]; then
  # No shared data here: a random 224x224 tile as a .npy tensor stands in.
  img=$(mktemp --suffix=.npy)
  /usr/bin/python3 -c "import numpy as np; np.save('$img', np.random.default_rng(0).standard_normal((1,3,224,224)).astype('float32'))"
fi
mkdir -p out
"$bin" model run "$model" --input "$img" --output out/demo-output.npy
echo "raw output tensor: out/demo-output.npy"
