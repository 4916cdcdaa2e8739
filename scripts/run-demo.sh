#!/usr/bin/env bash
# The main job on its built-in default: installs what is missing, builds, generates a synthetic
# H&E slide (with ground truth) and analyzes it with the default model, then points to the
# outputs. The default model is trained on synthetic tiles only: it demonstrates the pipeline,
# it does not diagnose.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
bin=${HP_BUILD_DIR:-build}/histoplan
model=models/zoo/histoplan-default-densenet.onnx
mkdir -p out
slide=out/demo-slide.tiff
if [ ! -f out/demo-slide.truth.json ]; then
  "$bin" synth --out "$slide" --size 12288x12288 --seed 42 --mpp 0.25
fi
"$bin" model info "$model" --batch 16
"$bin" analyze "$slide" --model "$model" --out out/analysis --overwrite
echo
echo "outputs: out/analysis/<slide-id>/ (findings.json, heatmaps, overlay.png, regions.geojson for QuPath,"
echo "         regions.xml for ASAP, heatmap.tiff, tiles.csv); ground truth: out/demo-slide.truth.*"
