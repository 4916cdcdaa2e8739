#!/usr/bin/env bash
# The main job on its built-in default: installs what is missing, builds, generates a synthetic
# H&E slide (with ground truth), analyzes it with the default model and builds the preliminary
# report of a fictional demo case from the findings (report/examples/demo-case.json), then points
# to the outputs. The default model is trained on synthetic tiles only: it demonstrates the pipeline,
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
  "$bin" synth --out "$slide" --size 12288x12288 --seed 42 --mpp 0.25 --overwrite
fi
"$bin" model info "$model" --batch 16
"$bin" analyze "$slide" --model "$model" --out out/analysis --overwrite --slide-id demo-slide \
  --case DEMO-0001
# A signed report is never rebuilt: a signed demo report is kept and the new draft goes beside it.
report=out/report
if [ -d "$report/revisions" ]; then report=out/report-$(date -u +%Y%m%dT%H%M%SZ); fi
"$bin" report build report/examples/demo-case.json out/analysis/demo-slide/findings.json --slide "$slide" \
  --out "$report" --overwrite
echo
echo "outputs: out/analysis/demo-slide/ (findings.json, heatmaps, overlay.png, regions.geojson for QuPath,"
echo "         regions.xml for ASAP, heatmap.tiff, tiles.csv); ground truth: out/demo-slide.truth.*"
echo "         $report/ (report.json, report.fhir.json, report.html: PRELIMINARY until signed with"
echo "         histoplan report sign $report --pathologist ID --key KEY.pem)"
