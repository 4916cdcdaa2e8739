#!/usr/bin/env bash
# `histoplan analyze` without --model finds the default model from a binary outside the source
# tree (a build folder elsewhere: cmake -B /elsewhere), from an install moved to another prefix
# (preferring the install's own copy), and only where $HP_MODEL_DIR says when it is set.
# Env: HP_BIN, HP_BUILD_DIR, HP_SOURCE_DIR, HP_PYTHON.
set -u
bin=${HP_BIN:?HP_BIN not set}
build=${HP_BUILD_DIR:?HP_BUILD_DIR not set}
src=${HP_SOURCE_DIR:?HP_SOURCE_DIR not set}
py=${HP_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset HP_MODEL_DIR
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; [ -f "$tmp/log" ] && sed 's/^/    /' "$tmp/log" | tail -5; fail=$((fail+1)); }
model_sha() { # the model hash findings.json records
  "$py" -c "import json,glob,sys; print(json.load(open(glob.glob(sys.argv[1] + '/*/findings.json')[0]))['model']['sha256'])" "$1"
}
want=$(sha256sum "$src/models/zoo/histoplan-default-densenet.onnx" | cut -d' ' -f1)

"$bin" synth --out "$tmp/s.tiff" --size 1024x1024 --seed 11 >/dev/null 2>&1 || { echo "FAIL synth"; exit 1; }

# A build folder outside the source tree: the binary alone, in a folder of its own.
mkdir -p "$tmp/elsewhere/build"
cp "$bin" "$tmp/elsewhere/build/histoplan"
if (cd "$tmp" && "$tmp/elsewhere/build/histoplan" analyze "$tmp/s.tiff" --out "$tmp/a1" >"$tmp/log" 2>&1) &&
   [ "$(model_sha "$tmp/a1")" = "$want" ]; then
  ok "binary outside the source tree finds the source tree's default model"
else
  bad "binary outside the source tree finds the source tree's default model"
fi

# $HP_MODEL_DIR set: only there, and the message names it.
mkdir -p "$tmp/empty"
if HP_MODEL_DIR="$tmp/empty" "$tmp/elsewhere/build/histoplan" analyze "$tmp/s.tiff" --out "$tmp/a2" >"$tmp/log" 2>&1; then
  bad "HP_MODEL_DIR without the model is refused"
elif grep -q "HP_MODEL_DIR ($tmp/empty)" "$tmp/log"; then
  ok "HP_MODEL_DIR without the model is refused, naming it"
else
  bad "HP_MODEL_DIR without the model is refused, naming it"
fi

# An install, moved to another prefix: its own zoo comes first. A truncated copy there makes the
# run fail on that copy, which shows it is the one used; restored, the run succeeds.
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null 2>&1 || { echo "FAIL cmake --install"; exit 1; }
mv "$tmp/prefix" "$tmp/moved"
zoo="$tmp/moved/share/histoplan/zoo"
cp "$zoo/histoplan-default-densenet.onnx" "$tmp/good.onnx"
head -c 4096 "$tmp/good.onnx" >"$zoo/histoplan-default-densenet.onnx"
if ! "$tmp/moved/bin/histoplan" analyze "$tmp/s.tiff" --out "$tmp/a3" >"$tmp/log" 2>&1 && grep -q "$zoo" "$tmp/log"; then
  ok "a moved install uses its own zoo first"
else
  bad "a moved install uses its own zoo first"
fi
cp "$tmp/good.onnx" "$zoo/histoplan-default-densenet.onnx"
if "$tmp/moved/bin/histoplan" analyze "$tmp/s.tiff" --out "$tmp/a4" >"$tmp/log" 2>&1 && [ "$(model_sha "$tmp/a4")" = "$want" ]; then
  ok "a moved install runs its default model"
else
  bad "a moved install runs its default model"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
