#!/usr/bin/env bash
# `histoplan analyze` on inputs that are not slides: a text file named .svs, an empty file, a
# PNG header followed by garbage, a missing file. Each fails with exit 1 and a message naming
# the cause, leaves no result folder behind, and does not stop a good slide given after it.
# A slide path longer than a message can hold, under a folder named like a patient, stays out of
# batch-summary.json. Output folders: --overwrite never replaces a folder histoplan did not make;
# a run's .partial folder is never touched while that run is alive (a second run of the slide
# waits for it), and is removed by the next run once the run that made it has been killed.
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

# A path longer than an error message (1024 bytes) under a patient-named folder: the message is
# cut inside the path, and the cut path must not reach batch-summary.json either.
deep="$tmp/Quixley_Zanthorpe"
for i in 1 2 3 4 5 6; do deep="$deep/$(printf 'folder%.0s' $(seq 30))"; done
mkdir -p "$deep"
echo "not a slide" >"$deep/Zanthorpe_Quixley_biopsy.svs"
rm -rf "$tmp/out"
"$bin" analyze "$deep/Zanthorpe_Quixley_biopsy.svs" "$tmp/good.tiff" --model "$model" --out "$tmp/out" \
  >"$tmp/log" 2>&1
if [ ${#deep} -gt 1100 ] && [ -s "$tmp/out/batch-summary.json" ] && \
   ! grep -qi "quixley\|zanthorpe" "$tmp/out/batch-summary.json"; then
  ok "a ${#deep}-byte slide path stays out of batch-summary.json"
else
  cp "$tmp/out/batch-summary.json" "$tmp/log" 2>/dev/null; bad "long path: the folder or file name is in batch-summary.json"
fi

# --overwrite replaces only a folder histoplan made: OUT/images holding a user's files is refused.
rm -rf "$tmp/out"; mkdir -p "$tmp/out/images"; echo "a user's file" >"$tmp/out/images/notes.txt"
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id images --overwrite >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "not an analysis folder made by histoplan" "$tmp/log" && \
   [ "$(ls -A "$tmp/out/images")" = notes.txt ]; then
  ok "--overwrite refuses OUT/images that histoplan did not make, its files untouched"
else
  bad "--overwrite on a user's folder: exit $rc, files: $(ls -A "$tmp/out/images" | tr '\n' ' ')"
fi
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id again >"$tmp/log" 2>&1 &&
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id again --overwrite >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ -f "$tmp/out/again/findings.json" ] && [ ! -e "$tmp/out/again.replaced" ]; then
  ok "--overwrite replaces a folder histoplan made"
else
  bad "--overwrite of histoplan's own folder: exit $rc"
fi

# A run killed between moving the old result aside and putting the new one in place leaves
# OUT/<id>.replaced and no OUT/<id>: the next run puts the old result back (then, without
# --overwrite, keeps it: the same slide, model and options, so the slide is skipped).
mv "$tmp/out/again" "$tmp/out/again.replaced"
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id again >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q "already analysed with the same slide, model and options" "$tmp/log" &&
   [ -f "$tmp/out/again/findings.json" ] && [ ! -e "$tmp/out/again.replaced" ]; then
  ok "a result a killed run had moved aside is put back"
else
  bad "restoring a moved-aside result: exit $rc"
fi

# A run in progress: its .partial folder is left alone by other runs, and a second run of the
# same slide id waits for it (the slide's lock); when the first run is killed, the lock dies with
# it, and the waiting run removes what it left and does the work.
"$bin" synth --out "$tmp/slow.tiff" --size 8192x8192 --seed 1602 >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
rm -rf "$tmp/out"
"$bin" analyze "$tmp/slow.tiff" --model "$model" --out "$tmp/out" --slide-id live --threads 1 --batch 2 \
  >"$tmp/live.log" 2>&1 &
live=$!
for _ in $(seq 600); do [ -d "$tmp/out/live.partial" ] && break; sleep 0.1; done
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id live >"$tmp/waiter.log" 2>&1 &
waiter=$!
for _ in $(seq 100); do grep -q "waiting for it" "$tmp/waiter.log" && break; sleep 0.1; done
cp "$tmp/waiter.log" "$tmp/log"
if grep -q "being analysed by process $live on this host" "$tmp/waiter.log" && kill -0 "$waiter" 2>/dev/null &&
   kill -0 "$live" 2>/dev/null && [ -d "$tmp/out/live.partial" ]; then
  ok "a second run of a slide being analysed waits for it, naming the process, its .partial folder kept"
else
  bad "second run of a live slide"
fi
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id other >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && kill -0 "$live" 2>/dev/null && [ -d "$tmp/out/live.partial" ]; then
  ok "another slide's run into the same OUT leaves the live .partial folder alone"
else
  bad "another run while one is live: exit $rc"
fi
kill -9 "$live" 2>/dev/null; wait "$live" 2>/dev/null
wait "$waiter"
rc=$?
cp "$tmp/waiter.log" "$tmp/log"
if [ "$rc" -eq 0 ] && [ -f "$tmp/out/live/findings.json" ] && [ ! -e "$tmp/out/live.partial" ] &&
   [ ! -e "$tmp/out/live.lock" ]; then
  ok "the waiting run takes the slide over once the run holding it is killed"
else
  bad "the waiting run after the kill: exit $rc"
fi
"$bin" analyze "$tmp/slow.tiff" --model "$model" --out "$tmp/out" --slide-id killed --threads 1 --batch 2 \
  >"$tmp/killed.log" 2>&1 &
killed=$!
for _ in $(seq 600); do [ -d "$tmp/out/killed.partial" ] && break; sleep 0.1; done
kill -9 "$killed" 2>/dev/null; wait "$killed" 2>/dev/null
if [ -d "$tmp/out/killed.partial" ] && [ -f "$tmp/out/killed.lock" ]; then
  ok "a killed run leaves its .partial folder and its (unlocked) lock file"
else
  bad "no .partial or lock file after kill"
fi
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id third >"$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$tmp/out/killed.partial" ] && [ ! -e "$tmp/out/killed.lock" ] &&
   [ -f "$tmp/out/other/findings.json" ]; then
  ok "the next run removes the killed run's .partial folder and lock file"
else
  bad "after a killed run: exit $rc, $(ls "$tmp/out" | tr '\n' ' ')"
fi
mkdir -p "$tmp/out/mine.partial"; echo "a user's file" >"$tmp/out/mine.partial/notes.txt"
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id fourth >"$tmp/log" 2>&1
if [ -f "$tmp/out/mine.partial/notes.txt" ]; then
  ok "a folder named *.partial without histoplan's marker is left alone"
else
  bad "a user's *.partial folder was removed"
fi
# A run killed between making its .partial folder and marking it leaves it empty and unmarked;
# its lock is free, so the next run into OUT removes it at once (not a minute later).
mkdir "$tmp/out/ghost.partial"
"$bin" analyze "$tmp/good.tiff" --model "$model" --out "$tmp/out" --slide-id fifth >"$tmp/log" 2>&1
if [ ! -e "$tmp/out/ghost.partial" ] && [ ! -e "$tmp/out/ghost.lock" ] && [ -f "$tmp/out/mine.partial/notes.txt" ]; then
  ok "an empty unmarked .partial folder whose lock is free is removed by the next run"
else
  bad "an empty unmarked .partial folder: $(ls "$tmp/out" | tr '\n' ' ')"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
