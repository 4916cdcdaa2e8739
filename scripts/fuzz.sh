#!/usr/bin/env bash
# Builds a fuzzer (clang, libFuzzer, ASan + UBSan) and fuzzes for a while.
#   scripts/fuzz.sh [SECONDS] [HARNESS]   default 600 s, fuzz_model_load
# Harnesses: fuzz_model_load (ONNX model files), fuzz_report_inputs (case files, findings, rule
# tables and report.json, through the report builder and renderers; seeds in tests/fuzz/report-seeds),
# fuzz_serve_request (the service's request bodies, paths, Range headers and slide paths through
# parsing and validation; seeds in tests/fuzz/serve-seeds).
# Environment: HP_FUZZ_BUILD (build folder, default build-fuzz), HP_FUZZ_JOBS (parallel
# workers, default the core count), HP_PYTHON (adds a PyTorch-exported conv net to the seeds).
# Findings land in $HP_FUZZ_BUILD/fuzz-corpus/artifacts; each one is minimized and its stack
# printed. Exit status 1 when there are findings.
set -euo pipefail
secs=${1:-600}
harness=${2:-fuzz_model_load}
case $harness in fuzz_model_load | fuzz_report_inputs | fuzz_serve_request) ;; *) echo "fuzz.sh: unknown harness $harness" >&2; exit 2 ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
build=${HP_FUZZ_BUILD:-$src/build-fuzz}
jobs=${HP_FUZZ_JOBS:-$(nproc)}
py=${HP_PYTHON:-/usr/bin/python3}

CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -DHP_CUDA=OFF -DHP_FUZZ=ON -DHP_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "$harness"

fuzzer=$build/tests/fuzz/$harness
if [ "$harness" = fuzz_model_load ]; then
    corpus=$build/fuzz-corpus
    seed=$corpus/seed
elif [ "$harness" = fuzz_serve_request ]; then
    corpus=$build/fuzz-corpus-$harness
    seed=$src/tests/fuzz/serve-seeds
else
    corpus=$build/fuzz-corpus-$harness
    seed=$src/tests/fuzz/report-seeds
fi
work=$corpus/work
art=$corpus/artifacts
mkdir -p "$seed" "$work" "$art"

# A real exported network is a better seed than single-node tests: it has initializers,
# attributes and a chain of ops, the things a loader gets wrong.
if [ "$harness" = fuzz_model_load ] && [ ! -f "$seed/torch_tiny_convnet.onnx" ] && "$py" -c 'import torch' 2>/dev/null; then
    "$py" - "$seed/torch_tiny_convnet.onnx" <<'PY' >/dev/null 2>&1 || true
import sys, torch
class Net(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.c1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        s.bn = torch.nn.BatchNorm2d(4)
        s.c2 = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)
        s.fc = torch.nn.Linear(4, 2)
    def forward(s, x):
        x = torch.relu(s.bn(s.c1(x)))
        x = torch.nn.functional.avg_pool2d(torch.max_pool2d(x, 2), 1)
        x = torch.cat([torch.relu(s.c2(x)), x[:, :, ::2, ::2]], 1)[:, :4]
        x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.softmax(s.fc(x), 1)
torch.manual_seed(0)
torch.onnx.export(Net().eval(), torch.randn(1, 3, 8, 8), sys.argv[1], opset_version=13)
PY
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "fuzzing for ${secs}s with $jobs worker(s); seeds: $(ls "$seed" | wc -l)"
rc=0
(cd "$art" && "$fuzzer" -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="$art/" -print_final_stats=1 "$work" "$seed") >"$corpus/fuzz.log" 2>&1 || rc=$?
tail -n 15 "$corpus/fuzz.log"

shopt -s nullglob
findings=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
found=()
for f in "${findings[@]}"; do
    case $f in *.min) continue ;; esac
    found+=("$f")
done
if [ ${#found[@]} -eq 0 ]; then
    echo "fuzz: no findings in ${secs}s (fuzzer exit $rc; corpus $(ls "$work" | wc -l) inputs)"
    exit 0
fi

# Fork mode keeps going after a crash, so one bug leaves many artifacts: group them by where
# they fail (the sanitizer's first source location), then minimize and show one per group.
signature() {
    { "$fuzzer" -runs=1 "$1" 2>&1 || true; } | awk '
        /runtime error:/ { n = split($1, a, ":"); print "ubsan " a[1] ":" a[2]; found = 1; exit }
        /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)/ {
            kind = $0; sub(/.*ERROR: /, "", kind); sub(/ on .*/, "", kind); sub(/ \(.*/, "", kind)
            want = 1; next }
        want && /^ +#[0-9]+ / && !/libFuzzer|fuzzer::|asan_|ubsan_|__sanitizer|interceptor|in (malloc|calloc|realloc) |libc\.so|LLVMFuzzer/ {
            loc = $5; sub(/:[0-9]+$/, "", loc); print kind " in " $4 " " loc; found = 1; exit }
        END { if (!found) print "unclassified" }'
}
declare -A first count
for f in "${found[@]}"; do
    sig=$(signature "$f")
    count[$sig]=$(( ${count[$sig]:-0} + 1 ))
    [ -n "${first[$sig]:-}" ] || first[$sig]=$f
done
echo "fuzz: ${#found[@]} artifact(s), ${#first[@]} distinct failure(s)"
for sig in "${!first[@]}"; do
    f=${first[$sig]}
    min=$f.min
    if [ ! -f "$min" ]; then
        "$fuzzer" -minimize_crash=1 -max_total_time=30 -exact_artifact_path="$min" "$f" \
            >/dev/null 2>&1 || true
        [ -f "$min" ] || cp "$f" "$min"
    fi
    echo "==== $sig  (${count[$sig]} artifact(s); minimized input: $min, $(stat -c %s "$min") bytes)"
    { "$fuzzer" -runs=1 "$min" 2>&1 || true; } | awk '
        /ERROR|runtime error/ && !shown { print; shown = 1; next }
        shown && /^ +#[0-9]+ / && !/libFuzzer|fuzzer::|__sanitizer/ { print }
        shown && /LLVMFuzzerTestOneInput/ { exit }' | head -n 20
done
exit 1
