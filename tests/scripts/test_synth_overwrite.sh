#!/usr/bin/env bash
# `histoplan synth --out S.tiff` writes the slide and S.truth.png, S.truth.geojson, S.truth.json.
# None of them is replaced without --overwrite: an existing slide, or an existing truth file beside
# a new slide name, is refused with exit 1, the file named, and every file left as it was; with
# --overwrite all four are written.
set -u
bin=${HP_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; sed 's/^/    /' "$tmp/log" | head -8; fail=$((fail+1)); }
sums() { (cd "$tmp" && sha256sum "$@" 2>/dev/null); }

"$bin" synth --out "$tmp/s.tiff" --size 512x512 --seed 7 >"$tmp/log" 2>&1 || { bad "first synth"; exit 1; }
files="s.tiff s.truth.png s.truth.geojson s.truth.json"
before=$(sums $files)

"$bin" synth --out "$tmp/s.tiff" --size 768x768 --seed 8 >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "s.tiff exists" "$tmp/log" && grep -q -- "--overwrite" "$tmp/log" &&
   [ "$(sums $files)" = "$before" ]; then
  ok "an existing slide is not replaced without --overwrite (exit 1, files unchanged)"
else
  bad "synth over an existing slide: exit $rc"
fi

# Only a truth file is there (e.g. an annotated ground truth kept beside a moved slide).
echo '{"annotated": "by hand"}' >"$tmp/t.truth.json"
"$bin" synth --out "$tmp/t.tiff" --size 512x512 --seed 9 >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "t.truth.json exists" "$tmp/log" && [ ! -e "$tmp/t.tiff" ] &&
   [ "$(cat "$tmp/t.truth.json")" = '{"annotated": "by hand"}' ]; then
  ok "an existing truth file is not replaced, and no slide is written beside it"
else
  bad "synth over an existing truth file: exit $rc"
fi

"$bin" synth --out "$tmp/s.tiff" --size 768x768 --seed 8 --overwrite >"$tmp/log" 2>&1
rc=$?
after=$(sums $files)
changed=0
for f in $files; do
  [ "$(echo "$before" | grep " $f\$")" != "$(echo "$after" | grep " $f\$")" ] && changed=$((changed+1))
done
if [ "$rc" -eq 0 ] && [ "$changed" -eq 4 ]; then
  ok "--overwrite replaces the slide and its three truth files"
else
  bad "synth --overwrite: exit $rc, $changed of 4 files changed"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
