#!/usr/bin/env bash
# The histoplan command line: --version/--help, exit codes (0 ok, 1 failed, 2 usage), the demo
# model with its card on a real BACH image, a model without a card (refused naming the missing
# options, then run with them), a corrupt model, and the .npy output. Env: HP_BIN, HP_SOURCE_DIR,
# HP_SHARED_DIR, HP_PYTHON.
set -u
bin=${HP_BIN:?HP_BIN not set}
src=${HP_SOURCE_DIR:?HP_SOURCE_DIR not set}
py=${HP_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
expect() { # expect NAME WANT_RC GREP_PATTERN -- command...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"; sed 's/^/    /' "$tmp/out" | head -5; fail=$((fail+1)); return
  fi
  if [ -n "$pat" ] && ! grep -qE -- "$pat" "$tmp/out"; then
    echo "FAIL $name: output lacks /$pat/"; sed 's/^/    /' "$tmp/out" | head -5; fail=$((fail+1)); return
  fi
  echo "ok   $name"; pass=$((pass+1))
}
model=$src/models/zoo/histoplan-demo-densenet.onnx

expect "--version" 0 '^histoplan [0-9]+\.[0-9]+' -- "$bin" --version
expect "--help" 0 'model info' -- "$bin" --help
expect "model --help" 0 'exit status' -- "$bin" model --help
expect "no command" 2 'usage' -- "$bin"
expect "unknown command" 2 'unknown command' -- "$bin" frobnicate
expect "unknown option" 2 '' -- "$bin" model info "$model" --no-such-option
expect "bad backend" 2 'backend must be' -- "$bin" model run "$model" --backend tpu --input x.png
expect "run without --input" 2 'needs --input' -- "$bin" model run "$model"
expect "fp16 on the CPU refused" 2 'needs --backend cuda' -- "$bin" model run "$model" --input x.npy --precision fp16
expect "info demo" 0 'planned peak activation memory' -- "$bin" model info "$model"
expect "info lists the classes" 0 'classes: normal benign in_situ invasive' -- "$bin" model info "$model"

img=${HP_SHARED_DIR:-$src/../shared}/data/real/bach/BACH_Benign_sample.png
if [ -f "$img" ]; then
  # The sample is a 584x438 copy of a 2048x1536 BACH image at 0.42 um/px: about 1.47 um/px.
  # Not the model's 224x224: refused, never squashed, with --mpp and cropping named.
  expect "BACH image of another size refused" 2 '--mpp.*crop' -- "$bin" model run "$model" --input "$img"
  expect "run on a BACH image at its MPP" 0 'tile 0 at x=0 y=0' -- "$bin" model run "$model" --input "$img" --mpp 1.47 --output "$tmp/y.npy"
  # Resampled to the card's 0.5 um/px (1717x1288): 7 x 5 tiles, one row of 4 logits each.
  expect "output .npy shape" 0 '^\(35, 4\)$' -- "$py" -c "import numpy as np; print(np.load('$tmp/y.npy').shape)"
  "$py" -c "from PIL import Image; Image.open('$img').convert('RGB').crop((100, 100, 324, 324)).save('$tmp/crop.png')"
  expect "run on a 224x224 crop" 0 'invasive|normal|benign|in_situ' -- "$bin" model run "$model" --input "$tmp/crop.png"
  # Without a card: refused with the missing options named, exit 2; then runs with them.
  cp "$model" "$tmp/nocard.onnx"
  expect "no card refused" 2 '--mean --std --classes' -- "$bin" model run "$tmp/nocard.onnx" --input "$tmp/crop.png"
  expect "no card with options" 0 'tumour' -- "$bin" model run "$tmp/nocard.onnx" --input "$tmp/crop.png" \
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --classes normal,benign,in_situ,tumour --top 4
  expect "no card: --mpp has no MPP to resample to" 2 'card gives no MPP' -- "$bin" model run "$tmp/nocard.onnx" --input "$img" \
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --classes a,b,c,d --mpp 1.47
  expect "bad --mean" 2 'three comma-separated' -- "$bin" model run "$tmp/nocard.onnx" --input "$tmp/crop.png" --mean 1,2 --std 1,1,1 --classes a
elif [ "${HP_REQUIRE_SHARED:-0}" = 1 ]; then
  echo "FAIL $img not found and HP_REQUIRE_SHARED=1"; fail=$((fail+1))
else
  echo "note: $img not found; image cases skipped"
fi

# A card whose hash does not match the model is refused (the file is not the one described).
cp "$model" "$tmp/m.onnx"
sed 's/"sha256": *"[0-9a-f]*"/"sha256": "0000000000000000000000000000000000000000000000000000000000000000"/' \
  "${model%.onnx}.card.json" >"$tmp/m.card.json"
expect "card hash mismatch" 1 'does not match the card' -- "$bin" model info "$tmp/m.onnx"

head -c 1000 "$model" >"$tmp/trunc.onnx"
expect "truncated model" 1 'trunc.onnx' -- "$bin" model info "$tmp/trunc.onnx"
expect "missing model" 1 'cannot open' -- "$bin" model info "$tmp/absent.onnx"
"$py" -c "import numpy as np; np.save('$tmp/bad.npy', np.zeros((1,3,10,10), np.float32))"
expect "input of the wrong shape" 1 'does not match the model input' -- "$bin" model run "$model" --input "$tmp/bad.npy"
expect "bench" 0 'items/s' -- "$bin" model bench "$model" --batch 2 --iterations 1 --warmup 0
if ! command -v nvidia-smi >/dev/null 2>&1; then
  "$py" -c "import numpy as np; np.save('$tmp/x.npy', np.zeros((1,3,224,224), np.float32))"
  # 1 (no usable device) in a CUDA build, 3 (refused: not in this build) without CUDA.
  "$bin" model run "$model" --input "$tmp/x.npy" --backend cuda >"$tmp/out" 2>&1
  cuda_rc=$?
  if { [ "$cuda_rc" -eq 1 ] || [ "$cuda_rc" -eq 3 ]; } && grep -qE 'CUDA|cuda|device|driver' "$tmp/out"; then
    echo "ok   cuda backend without a GPU"; pass=$((pass+1))
  else
    echo "FAIL cuda backend without a GPU: exit $cuda_rc"; sed 's/^/    /' "$tmp/out" | head -5; fail=$((fail+1))
  fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
