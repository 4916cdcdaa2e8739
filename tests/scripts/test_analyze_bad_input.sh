#!/usr/bin/env bash
# `histoplan analyze` on inputs that are not slides: a text file named .svs, an empty file, a
# PNG header followed by garbage, a missing file. Each fails with exit 1 and a message naming
# the cause, leaves no result folder behind, and does not stop a good slide given after it.
set -u
bin=${HP_BIN:?} src=${HP_SOURCE_DIR:?}
model=$src/models/zoo/histoplan-default-densenet.onnx
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; sed 's/^/    /' "$tmp/log" | head -8; fail=$((fail+1)); }

echo "Patient: Quixley Zanthorpe, accession S26-1234" >"$tmp/quixley_zanthorpe.svs"
: >"$tmp/empty.tiff"
printf '\x89PNG\r\n\x1a\n garbage' >"$tmp/broken.png"
"$bin" synth --out "$tmp/good.tiff" --size 2048x2048 --seed 1601 >/dev/null 2>&1 || { echo "synth failed"; exit 1; }

for f in quixley_zanthorpe.svs empty.tiff broken.png absent.svs; do
  rm -rf "$tmp/out"
  "$bin" analyze "$tmp/$f" --model "$model" --out "$tmp/out" >"$tmp/log" 2>&1
  rc=$?
  if [ "$rc" -eq 1 ] && grep -qiE "error|cannot|not|fail|corrupt|truncated|empty" "$tmp/log" && \
     [ -z "$(find "$tmp/out" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then
    ok "$f: exit 1 with a message, no result folder"
  else
    bad "$f: exit $rc"
  fi
done

# A batch: the bad inputs first, then a good slide that must still complete; nothing under OUT
# may repeat the patient-like file name.
rm -rf "$tmp/out"
"$bin" analyze "$tmp/quixley_zanthorpe.svs" "$tmp/empty.tiff" "$tmp/good.tiff" --model "$model" --out "$tmp/out" \
  >"$tmp/log" 2>&1
rc=$?
done_dirs=$(find "$tmp/out" -name findings.json | wc -l)
if [ "$rc" -eq 1 ] && [ "$done_dirs" -eq 1 ]; then ok "batch: exit 1, the good slide completed"; else bad "batch: exit $rc, $done_dirs results"; fi
if grep -rqi "quixley\|zanthorpe" "$tmp/out"; then bad "an output repeats the file name"; else ok "no output repeats the file name"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
