#!/usr/bin/env bash
# The one prepared check for the GPU machine: CUDA tests, compute-sanitizer memcheck, and the
# densenet121 benchmark against PyTorch on the same card, the super-resolution model against
# PyTorch and `analyze --sr` against `--sr off`, and end-to-end tiles/s of `analyze` on a
# generated slide against the model alone at the same batch size. Prints a short table last.
#
#   here:            scripts/gpu-bundle.sh            (builds .gpu/bundle.tar.xz)
#   GPU machine:     scripts/gpu-check.sh             (from the repository root)
#
# It uses .gpu/bin and .gpu/lib (unpacked from .gpu/bundle.tar.xz when needed), the cuDNN and
# cuBLAS that the machine's PyTorch packages bring, and that machine's python3/torch for the
# model export and the peer figures. Logs go to $OUT/gpu-check (or .gpu/out/gpu-check).
# Environment: HP_GPU_BATCH (default 256), HP_GPU_ITERS (10), HP_GPU_BUDGET_S (480: later steps
# are skipped once the check has run this long), HP_GPU_SKIP="sanitizer bench e2e ..." to skip
# steps; HP_GPU_E2E_SIZE (32768: side of the generated slide, px), HP_GPU_E2E_BATCH (128).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=$root/.gpu/out/gpu-check
rm -rf "$logs"
mkdir -p "$logs"
batch=${HP_GPU_BATCH:-256}
iters=${HP_GPU_ITERS:-10}
budget=${HP_GPU_BUDGET_S:-480}
skip=" ${HP_GPU_SKIP:-} "
SECONDS=0
declare -a rows=()
row() { rows+=("$(printf '%-44s %s' "$1" "$2")"); }
left() { echo $((budget - SECONDS)); }
note() { echo "== [$(printf '%3d' $SECONDS)s] $*"; }
skipped() { case "$skip" in *" $1 "*) return 0 ;; esac; return 1; }

print_table() {
  {
    echo
    echo "================ histoplan GPU check ================"
    for r in "${rows[@]}"; do echo "$r"; done
    echo "(logs: $logs; total ${SECONDS}s)"
  } | tee "$logs/table.txt"
  # $OUT (when set) gets the table and every log in one archive: few files travel back
  if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    cp "$logs/table.txt" "$OUT/gpu-check-table.txt"
    tar -C "$(dirname "$logs")" -czf "$OUT/gpu-check-logs.tar.gz" "$(basename "$logs")"
  fi
}
trap print_table EXIT

# ---- the bundle ----------------------------------------------------------------------------
if [ -f .gpu/bundle.tar.xz ] && { [ ! -d .gpu/bin ] || [ .gpu/bundle.tar.xz -nt .gpu/bin ]; }; then
  rm -rf .gpu/bin .gpu/lib .gpu/shared .gpu/sr-ref
  # that image may lack the xz program; its python3 (PyTorch's) always has lzma
  if command -v xz >/dev/null; then
    tar -C .gpu -xJf .gpu/bundle.tar.xz
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu/bundle.tar.xz .gpu
  fi && touch .gpu/bin
fi
bin=.gpu/bin
[ -x "$bin/test_cuda_ops" ] || bin=.gpu/build/tests
cli=.gpu/bin/histoplan
[ -x "$cli" ] || cli=.gpu/build/histoplan
if [ ! -x "$bin/test_cuda_ops" ]; then
  row "bundle" "MISSING: run scripts/gpu-bundle.sh on the build machine and carry .gpu/bundle.tar.xz"
  exit 1
fi

gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
row "device" "${gpu:-nvidia-smi not available}"
note "device: ${gpu:-?}"

# ---- libraries: ours, then cuDNN / cuBLAS from the PyTorch packages ------------------------
py=${HP_PYTHON:-python3}
nvdirs=$("$py" - <<'EOF' 2>/dev/null
import importlib, os
seen = []
for mod in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cu13", "nvidia"):
    try:
        m = importlib.import_module(mod)
    except Exception:
        continue
    for p in list(getattr(m, "__path__", [])):
        for sub in ("lib", "lib64", "cu13/lib", ""):
            d = os.path.join(p, sub)
            if os.path.isdir(d) and d not in seen:
                seen.append(d)
print(":".join(seen))
EOF
)
libpath="$root/.gpu/lib"
find_lib() { # name -> directory holding it, searched in the packages, then the toolkit
  local d
  for d in ${nvdirs//:/ } /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/$1" ] && { echo "$d"; return 0; }
  done
  d=$(find $("$py" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local -name "$1" -print -quit 2>/dev/null)
  [ -n "$d" ] && dirname "$d"
}
for lib in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13; do
  d=$(find_lib "$lib")
  if [ -n "$d" ]; then
    case ":$libpath:" in *":$d:"*) ;; *) libpath="$libpath:$d" ;; esac
  else
    note "not found: $lib"
  fi
done
# libstdc++ / libgcc_s from the build machine only when the image's are too old for us
if LD_LIBRARY_PATH="$libpath" ldd "$bin/test_cuda_ops" 2>&1 | grep -q "GLIBCXX\|GCC_[0-9]"; then
  libpath="$libpath:$root/.gpu/lib/compat"
fi
missing=$(LD_LIBRARY_PATH="$libpath" ldd "$bin/test_cuda_ops" "$cli" 2>&1 | grep -E "not found|version" | sort -u)
note "LD_LIBRARY_PATH for histoplan: $libpath"
if [ -n "$missing" ]; then
  echo "$missing"
  row "libraries" "MISSING: $(echo "$missing" | head -3 | tr '\n' ' ')"
  exit 1
fi
row "libraries" "ok (cuDNN/cuBLAS from: $(echo "$libpath" | tr ':' '\n' | sed -n '2,3p' | tr '\n' ' '))"

export HP_PYTHON="$py" HP_SOURCE_DIR="$root" HP_BUILD_DIR="$root/.gpu/build" HP_BIN="$root/$cli"
# the real patches the stain test reads travel in the bundle (scripts/gpu-bundle.sh)
export HP_SHARED_DIR="$root/.gpu/shared"
# run_hp SECONDS [VAR=value ...] program args...: our programs with our libraries (PyTorch's
# python3 runs without them, so Debian's libstdc++ or zlib never shadow the image's)
run_hp() {
  local t=$1
  shift
  timeout "$t" env LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
}

test_row() { # label log rc
  local summary
  summary=$(grep -E "passed, [0-9]+ failed|skipped" "$2" | tail -1)
  case "$3" in
    0) row "$1" "PASS  ${summary}" ;;
    77) row "$1" "SKIP  ${summary}" ;;
    124 | 137) row "$1" "TIMEOUT ($(grep -c nmse "$2") comparisons done)" ;;
    *) row "$1" "FAIL rc=$3  ${summary}; first: $(grep -m1 -E "check failed|error|Error" "$2" | cut -c1-150)" ;;
  esac
}

# ---- CUDA tests ------------------------------------------------------------------------------
note "test_cuda_ops"
run_hp 240 HP_CUDA_SYNC=1 "$bin/test_cuda_ops" >"$logs/test_cuda_ops.log" 2>&1
test_row "test_cuda_ops (fp32/fp16/bf16 vs CPU ref)" "$logs/test_cuda_ops.log" $?
grep -E "check failed" "$logs/test_cuda_ops.log" | head -15

# (cuDNN's heuristic algorithms run every case under memcheck, below)
if ! skipped fuse && [ "$(left)" -gt 60 ]; then
  note "test_cuda_ops conv cases with HP_CUDA_FUSE=1 (cudnnConvolutionBiasActivationForward)"
  run_hp 90 HP_CUDA_FUSE=1 HP_CUDA_TEST_ONLY=conv "$bin/test_cuda_ops" >"$logs/test_cuda_ops_fuse.log" 2>&1
  test_row "conv cases, fused bias+ReLU" "$logs/test_cuda_ops_fuse.log" $?
fi

for t in "$bin"/test_*; do
  name=$(basename "$t")
  [ "$name" = test_cuda_ops ] && continue
  [ -x "$t" ] || continue
  note "$name"
  run_hp 120 "$t" >"$logs/$name.log" 2>&1
  test_row "$name" "$logs/$name.log" $?
done

# ---- compute-sanitizer: memcheck, racecheck -------------------------------------------------
# Early, so that a later step running long cannot squeeze it out. memcheck runs the whole stain
# test and every operator case (cuDNN's heuristic algorithms: a find would time hundreds of
# instrumented launches); racecheck the kernels that use shared memory (global pooling).
san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
if skipped sanitizer; then
  row "compute-sanitizer" "skipped (HP_GPU_SKIP)"
elif [ -z "$san" ]; then
  row "compute-sanitizer" "skipped (compute-sanitizer not found)"
else
  for spec in "memcheck test_cuda_stain 60 -" "memcheck test_cuda_ops 150 -" \
    "racecheck test_cuda_ops 60 global"; do
    read -r tool prog lim only <<<"$spec"
    [ "$only" = - ] && only=
    label="$tool $prog${only:+ ($only cases)}"
    if [ "$(left)" -lt $((lim + 60)) ]; then
      row "$label" "skipped (time budget)"
      continue
    fi
    note "compute-sanitizer $label"
    log="$logs/${tool}_${prog}${only:+_$only}.log"
    run_hp "$lim" HP_CUDA_CONV_ALGO=heuristic HP_CUDA_TEST_ONLY="$only" "$san" --tool "$tool" \
      --error-exitcode 9 $([ "$tool" = memcheck ] && echo --leak-check full) "$bin/$prog" >"$log" 2>&1
    rc=$?
    errs=$(grep -m1 -o "ERROR SUMMARY: [0-9]* error" "$log")
    case $rc in
      0) row "$label" "PASS (${errs:-no summary}; $(grep -E 'passed, [0-9]+ failed' "$log" | tail -1 | cut -c1-60))" ;;
      124 | 137) row "$label" "TIMEOUT after ${lim}s (${errs:-no summary yet}; $(grep -c nmse "$log") comparisons done)" ;;
      *) row "$label" "FAIL rc=$rc ${errs}; first: $(grep -m1 -E 'Invalid|Race|Leaked|========= [A-Z]' "$log" | cut -c1-100)" ;;
    esac
  done
fi

# ---- densenet121: export, agreement with PyTorch, benchmark ----------------------------------
model="$root/.gpu/work/densenet121.onnx"
mkdir -p "$root/.gpu/work"
if ! skipped bench && [ "$(left)" -gt 90 ]; then
  note "export densenet121 and time it in PyTorch ($("$py" -c 'import torch; print("torch", torch.__version__)' 2>&1))"
  timeout 300 "$py" - "$model" "$batch" "$iters" >"$logs/export.log" 2>&1 <<'EOF'
# Exports densenet121 (torchvision's, or the same architecture written out when torchvision is
# absent), random weights, dynamic batch; saves a batch-4 input and PyTorch's fp32 output; then
# times the same model on the GPU: eager, autocast, channels_last, cudnn.benchmark (PyTorch's best
# case), with the input already on the GPU and with host input and output as histoplan's run has.
import inspect, json, statistics, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

out, batch, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
try:
    import torchvision
    model = torchvision.models.densenet121(weights=None)
    src = "torchvision " + torchvision.__version__
except Exception as e:  # same architecture as torchvision.models.densenet121
    class Layer(nn.Module):
        def __init__(s, c, g=32, bs=4):
            super().__init__()
            s.n1, s.c1 = nn.BatchNorm2d(c), nn.Conv2d(c, bs * g, 1, bias=False)
            s.n2, s.c2 = nn.BatchNorm2d(bs * g), nn.Conv2d(bs * g, g, 3, padding=1, bias=False)
        def forward(s, x):
            return torch.cat([x, s.c2(F.relu(s.n2(s.c1(F.relu(s.n1(x))))))], 1)
    class DenseNet121(nn.Module):
        def __init__(s):
            super().__init__()
            f = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
                 nn.MaxPool2d(3, 2, 1)]
            c = 64
            for i, n in enumerate((6, 12, 24, 16)):
                for _ in range(n):
                    f.append(Layer(c)); c += 32
                if i < 3:
                    f += [nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, c // 2, 1, bias=False),
                          nn.AvgPool2d(2, 2)]
                    c //= 2
            f.append(nn.BatchNorm2d(c))
            s.features, s.classifier = nn.Sequential(*f), nn.Linear(c, 1000)
        def forward(s, x):
            x = F.adaptive_avg_pool2d(F.relu(s.features(x)), 1)
            return s.classifier(torch.flatten(x, 1))
    model = DenseNet121()
    src = "inline definition (torchvision unavailable: %s)" % e
model.eval()
# give BN non-trivial statistics so the agreement check means something
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)
kw = dict(input_names=["input"], output_names=["logits"], opset_version=17,
          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
if "dynamo" in inspect.signature(torch.onnx.export).parameters:
    kw["dynamo"] = False
try:
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), out, **kw)
except Exception as e:  # a PyTorch whose TorchScript exporter is gone: the dynamo one
    print("TorchScript export failed (%s); dynamo export" % e, flush=True)
    kw.update(dynamo=True, opset_version=18)
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), out, **kw)
x = torch.randn(4, 3, 224, 224)
with torch.no_grad():
    y = model(x)
np.save(out[:-5] + "_x.npy", x.numpy().astype(np.float32))
np.save(out[:-5] + "_y.npy", y.numpy().astype(np.float32))
print("exported", out, "from", src, flush=True)

if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no GPU"}))
    sys.exit(0)
torch.backends.cudnn.benchmark = True
model = model.cuda().eval().to(memory_format=torch.channels_last)
xh = torch.randn(batch, 3, 224, 224)
xg = xh.cuda().to(memory_format=torch.channels_last)
for name, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
    for io in ("gpu", "host"):
        ts = []
        with torch.inference_mode(), torch.autocast("cuda", dtype=dt):
            for i in range(3 + iters):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                if io == "gpu":
                    y = model(xg)
                    torch.cuda.synchronize()
                else:
                    y = model(xh.cuda().to(memory_format=torch.channels_last)).float().cpu()
                if i >= 3:
                    ts.append(time.perf_counter() - t0)
        med = statistics.median(ts)
        print(json.dumps({"precision": name, "io": io, "batch": batch, "median_batch_s": med,
                          "items_per_s": batch / med}), flush=True)
EOF
  rc=$?
  if [ $rc -ne 0 ] || [ ! -s "$model" ]; then
    row "densenet121 export" "FAIL rc=$rc: $(tail -1 "$logs/export.log" | cut -c1-120)"
  else
    row "densenet121 export" "ok ($(grep -o 'from .*' "$logs/export.log" | cut -c6-60))"
    # agreement: histoplan CUDA vs PyTorch fp32 on the same batch of 4
    classes=$(seq -s, -f 'c%g' 0 999)
    for prec in fp32 fp16 bf16; do
      [ "$(left)" -gt 60 ] || break
      run_hp 120 "$cli" model run "$model" --input "${model%.onnx}_x.npy" \
        --output "$root/.gpu/work/out_$prec.npy" --backend cuda --precision $prec \
        --mean 0,0,0 --std 1,1,1 --classes "$classes" >"$logs/agree_$prec.log" 2>&1
      rc=$?
      if [ $rc -ne 0 ]; then
        row "densenet121 b4 $prec vs torch fp32" "FAIL rc=$rc: $(grep -m1 histoplan: "$logs/agree_$prec.log" | cut -c1-110)"
        continue
      fi
      res=$("$py" - "${model%.onnx}_y.npy" "$root/.gpu/work/out_$prec.npy" <<'EOF' 2>&1
import sys
import numpy as np
ref, got = np.load(sys.argv[1]), np.load(sys.argv[2]).reshape(np.load(sys.argv[1]).shape)
nmse = float(((got - ref) ** 2).sum() / max((ref ** 2).sum(), 1e-30))
rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
top1 = float((got.argmax(1) == ref.argmax(1)).mean())
print("nmse %.2e  max rel %.2e  top-1 agree %.0f%%" % (nmse, rel, 100 * top1))
EOF
)
      row "densenet121 b4 $prec vs torch fp32" "$res"
    done
  fi

  if [ -s "$model" ]; then
    note "PyTorch figures came with the export (batch $batch)"
    for prec in fp16 bf16; do
      [ "$(left)" -gt 45 ] || { row "bench $prec" "skipped (time budget)"; continue; }
      note "histoplan benchmark $prec, batch $batch"
      run_hp 240 "$cli" model bench "$model" --batch "$batch" --backend cuda \
        --precision $prec --iterations "$iters" --warmup 2 --json >"$logs/bench_$prec.log" 2>&1
      rc=$?
      ours=$(grep -o '"items_per_s":[0-9.]*' "$logs/bench_$prec.log" | tail -1 | cut -d: -f2)
      tg=$(grep "\"$prec\", \"io\": \"gpu\"" "$logs/export.log" | grep -o '"items_per_s": [0-9.]*' | cut -d' ' -f2)
      th=$(grep "\"$prec\", \"io\": \"host\"" "$logs/export.log" | grep -o '"items_per_s": [0-9.]*' | cut -d' ' -f2)
      if [ $rc -ne 0 ] || [ -z "$ours" ]; then
        row "bench densenet121 b$batch $prec" "histoplan FAIL rc=$rc: $(grep -m1 histoplan: "$logs/bench_$prec.log" | cut -c1-100); torch ${th:-?} img/s (host io)"
      else
        ratio=$(awk -v a="$ours" -v b="${th:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
        row "bench densenet121 b$batch $prec (img/s)" "histoplan $(printf '%.0f' "$ours") | torch host-io ${th:-?} | torch gpu-resident ${tg:-?} | ratio ${ratio}x"
      fi
    done
    # where the time goes (per-op device time, HP_CUDA_PROFILE) and what cuDNN's fused
    # conv+bias+ReLU gives, at fp16
    if [ "$(left)" -gt 60 ]; then
      note "profile densenet121 b$batch fp16 (HP_CUDA_PROFILE=1)"
      run_hp 120 HP_CUDA_PROFILE=1 "$cli" model bench "$model" --batch "$batch" --backend cuda \
        --precision fp16 --iterations 5 --warmup 1 --json >"$logs/profile_fp16.log" 2>&1
      row "profile b$batch fp16: top ops (ms/run)" "$(grep -E '^  [A-Za-z]' "$logs/profile_fp16.log" | grep -v 'stage / op' | sort -k3 -g -r | head -4 | awk '{printf "%s %.1f (%s)  ", $1, $3, $4}')"
      run_hp 120 HP_CUDA_FUSE=1 "$cli" model bench "$model" --batch "$batch" --backend cuda \
        --precision fp16 --iterations "$iters" --warmup 2 --json >"$logs/bench_fp16_fused.log" 2>&1
      fused=$(grep -o '"items_per_s":[0-9.]*' "$logs/bench_fp16_fused.log" | tail -1 | cut -d: -f2)
      row "bench b$batch fp16, HP_CUDA_FUSE=1 (img/s)" "histoplan ${fused:-FAIL: $(grep -m1 histoplan: "$logs/bench_fp16_fused.log" | cut -c1-90)}"
    fi
  fi
fi

# ---- end to end on a generated slide: analyze vs the model alone, same batch -----------------
# Reading and decoding should hide behind inference: the inference stage of `analyze` (tiles read,
# decoded and run through the model) should reach >= 0.8x `model bench` at the same batch size.
# The zoo's default model, fp32 (what analyze runs); the slide is made here by `histoplan synth`.
# The tile loader alone says how fast the CPUs can feed the card (OpenSlide, which analyze uses,
# and the plain libtiff reader); analyze on the CPU backend checks that the device path gives
# the same tile probabilities.
e2e_model="$root/models/zoo/histoplan-default-densenet.onnx"
e2e_size=${HP_GPU_E2E_SIZE:-32768}
e2e_batch=${HP_GPU_E2E_BATCH:-128}
e2e_slide="$root/.gpu/work/e2e-$e2e_size-seed2001.tiff"

# e2e_analyze NAME BACKEND: analyze into .gpu/work/e2e-NAME; 0 when findings exist
e2e_analyze() {
  local out="$root/.gpu/work/e2e-$1" lim=$(($(left) - 45))
  [ "$lim" -gt 240 ] && lim=240
  note "analyze --backend $2 --batch $e2e_batch ($(du -m "$e2e_slide" | cut -f1) MB slide)"
  rm -rf "$out"
  run_hp "$lim" "$cli" analyze "$e2e_slide" --model "$e2e_model" --backend "$2" \
    --batch "$e2e_batch" --out "$out" --slide-id bench >"$logs/e2e_analyze_$1.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] || [ ! -s "$out/bench/findings.json" ]; then
    row "end to end: analyze $2" "FAIL rc=$rc: $(grep -m1 histoplan "$logs/e2e_analyze_$1.log" | cut -c1-100)"
    return 1
  fi
  cp "$out/bench/findings.json" "$logs/e2e_findings_$1.json"
}

# e2e_rows NAME MODEL_ONLY: tiles/s of the inference stage and the whole run, ratios, stage shares
e2e_rows() {
  local r n inf tot r_inf r_tot verdict
  r=$("$py" - "$root/.gpu/work/e2e-$1/bench/findings.json" "${2:-0}" <<'EOF' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
t, n, mo = d["timings_s"], d["analysis"]["tiles_analysed"], float(sys.argv[2])
inf, tot = n / t["inference"], n / t["total"]
print("%d %.1f %.1f %s" % (n, inf, tot, "? ?" if mo <= 0 else "%.2f %.2f" % (inf / mo, tot / mo)))
print(" ".join("%s %.0f%%" % (k, 100 * t[k] / t["total"]) for k in
               ("open", "tissue", "tiling", "inference", "heatmap", "regions", "writing") if k in t)
      + " of %.1f s" % t["total"])
EOF
)
  read -r n inf tot r_inf r_tot <<<"$(echo "$r" | head -1)"
  verdict=$(awk -v r="${r_inf:-0}" 'BEGIN { print (r >= 0.8 ? "PASS" : "BELOW") }')
  row "end to end, $1 (tiles/s)" "inference stage $inf | whole run $tot | model only $(printf '%.0f' "${2:-0}") | $n tiles"
  row "end to end, $1 / model only (>= 0.8)" "$verdict ${r_inf}x (inference stage), ${r_tot}x (whole run)"
  row "end to end, $1: stage shares" "$(echo "$r" | sed -n 2p | cut -c1-100)"
}

if skipped e2e; then
  row "end to end (analyze vs model bench)" "skipped (HP_GPU_SKIP)"
elif [ -z "$gpu" ]; then
  row "end to end (analyze vs model bench)" "skipped (no GPU: nvidia-smi lists none)"
elif [ ! -s "$e2e_model" ]; then
  row "end to end (analyze vs model bench)" "skipped (no $e2e_model)"
elif ! run_hp 20 "$cli" analyze --help >/dev/null 2>&1; then
  row "end to end (analyze vs model bench)" "FAIL: $cli has no 'analyze' (stale bundle: rerun scripts/gpu-bundle.sh)"
elif [ "$(left)" -lt 120 ]; then
  row "end to end (analyze vs model bench)" "skipped (time budget)"
else
  if [ ! -s "$e2e_slide" ]; then
    note "synth ${e2e_size}x${e2e_size} slide, seed 2001, 0.25 um/px"
    run_hp 150 "$cli" synth --out "${e2e_slide%.tiff}.partial.tiff" --size "${e2e_size}x${e2e_size}" \
      --seed 2001 --mpp 0.25 --overwrite >"$logs/e2e_synth.log" 2>&1 &&
      mv -f "${e2e_slide%.tiff}.partial.tiff" "$e2e_slide"
  fi
  if [ ! -s "$e2e_slide" ]; then
    row "end to end: synth slide" "FAIL: $(tail -1 "$logs/e2e_synth.log" | cut -c1-110)"
  else
    note "model bench --backend cuda --batch $e2e_batch (same model, fp32)"
    run_hp 120 "$cli" model bench "$e2e_model" --batch "$e2e_batch" --backend cuda \
      --iterations "$iters" --warmup 2 --json >"$logs/e2e_bench.log" 2>&1
    mo=$(grep -o '"items_per_s":[0-9.]*' "$logs/e2e_bench.log" | tail -1 | cut -d: -f2)
    [ -n "$mo" ] || row "end to end: model bench b$e2e_batch" "FAIL: $(grep -m1 histoplan "$logs/e2e_bench.log" | cut -c1-100)"
    e2e_analyze cuda cuda && e2e_rows cuda "$mo"

    tr=$bin/bench_tile_read
    for reader in openslide plain; do
      [ -x "$tr" ] && [ "$(left)" -gt 45 ] || break
      run_hp 60 "$tr" "$e2e_slide" --target 0.5 --tile 224 --batch "$e2e_batch" \
        --threads "$(nproc)" --reader $reader >"$logs/tile_read_$reader.log" 2>&1
      tps=$(grep -o '"tiles_per_s": [0-9.]*' "$logs/tile_read_$reader.log" | cut -d' ' -f2)
      row "tile loader alone, $reader (tiles/s)" "${tps:-FAIL: $(tail -1 "$logs/tile_read_$reader.log" | cut -c1-90)} ($(nproc) threads, every grid tile)"
    done

    if [ "$(left)" -gt 60 ] && [ -s "$root/.gpu/work/e2e-cuda/bench/tiles.csv" ] &&
      e2e_analyze cpu cpu; then
      agree=$("$py" - "$root/.gpu/work/e2e-cuda/bench/tiles.csv" "$root/.gpu/work/e2e-cpu/bench/tiles.csv" <<'EOF' 2>&1
import csv, sys
gpu, cpu = [{r["tile_index"]: r for r in csv.DictReader(open(p))} for p in sys.argv[1:3]]
assert gpu.keys() == cpu.keys(), "different tiles analysed"
cols = [c for c in next(iter(gpu.values())) if c.startswith("prob_")]
d = max(abs(float(gpu[k][c]) - float(cpu[k][c])) for k in gpu for c in cols)
top = sum(gpu[k]["top_class"] == cpu[k]["top_class"] for k in gpu) / max(len(gpu), 1)
print("%s %d tiles: max |dp| %.2e, top class agrees %.2f%%" % ("PASS" if d < 1e-3 else "FAIL",
      len(gpu), d, 100 * top))
EOF
)
      row "end to end cuda vs cpu (tiles.csv)" "$agree"
    fi
  fi
fi

# ---- super-resolution models on the card: fp32, fp16, bf16 against PyTorch's float32 ---------
# Every zoo SR model through `histoplan model run --backend cuda --precision P` on a real H&E
# crop, against PyTorch's float32 output for it (made by gpu-bundle.sh on the build machine).
# fp32 must agree within 1e-4 relative (the CPU backend's own bound in test_sr_zoo); half
# precision is "accurate enough" when its 8-bit output is within 3 grey levels everywhere and its
# PSNR against float32 is at least 50 dB (JPEG at the upscale's quality 90 costs more). The CPU
# estimate (scripts/sr-precision-estimate.py) expects about 73 dB for fp16 and 55 dB for bf16.
if skipped sr; then
  row "SR models fp32/fp16/bf16" "skipped (HP_GPU_SKIP)"
elif [ -z "$gpu" ] || [ ! -s .gpu/sr-ref/input.npy ]; then
  row "SR models fp32/fp16/bf16" "skipped (no GPU, or no .gpu/sr-ref from gpu-bundle.sh)"
else
  note "super-resolution models at fp32, fp16, bf16 against PyTorch float32"
  for ref in .gpu/sr-ref/histoplan-sr-*.npy; do
    name=$(basename "$ref" .npy)
    cells=""
    for prec in fp32 fp16 bf16; do
      outp="$root/.gpu/work/$name-$prec.npy"
      mkdir -p "$root/.gpu/work"
      if ! run_hp 60 "$cli" model run "models/zoo/$name.onnx" --input .gpu/sr-ref/input.npy --output "$outp" \
        --backend cuda --precision $prec >"$logs/sr_${name}_$prec.log" 2>&1; then
        cells="$cells | $prec FAIL: $(grep -m1 histoplan "$logs/sr_${name}_$prec.log" | cut -c1-60)"
        continue
      fi
      cells="$cells | $("$py" - "$outp" "$ref" "$prec" <<'EOF' 2>&1 | tail -1
import sys
import numpy as np
y, ref, prec = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64), sys.argv[3]
if y.shape != ref.shape:
    print(f"{prec} FAIL shape {y.shape} vs {ref.shape}")
    sys.exit()
if prec == "fp32":
    rel = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-12)
    print(f"fp32 {'PASS' if rel <= 1e-4 else 'FAIL'} rel {rel:.1e}")
else:
    yc, rc = np.clip(y, 0, 1), np.clip(ref, 0, 1)
    mse = np.mean((yc - rc) ** 2)
    psnr = 99.0 if mse == 0 else 10 * np.log10(1 / mse)
    levels = int(np.abs(np.rint(yc * 255) - np.rint(rc * 255)).max())
    print(f"{prec} {'PASS' if psnr >= 50 and levels <= 3 else 'FAIL'} {psnr:.0f} dB {levels} lv")
EOF
)"
    done
    row "SR ${name#histoplan-sr-} cuda vs torch" "${cells# | }"
  done
fi

# ---- super-resolution: the zoo's x2 model on the card against PyTorch, and analyze --sr ----
# `histoplan upscale --backend cuda` over a 2048 x 2048 region of a generated 1.0 um/px slide
# (output megapixels/s, files included) against the same ONNX file run by PyTorch on the same card
# (scripts/sr_onnx_torch.py: the graph with PyTorch's operators, tiles of the same size, data on
# the card: PyTorch's best case); then `analyze --sr auto` against `--sr off` on the same slide
# (the cost of super-resolution in the whole run), and its tiles on cuda against cpu.
sr_model="$root/models/zoo/histoplan-sr-srvgg-x2.onnx"
sr_slide="$root/.gpu/work/sr-4096-seed2002.tiff"
if skipped sr; then
  row "super-resolution" "skipped (HP_GPU_SKIP)"
elif [ -z "$gpu" ] || [ ! -s "$sr_model" ]; then
  row "super-resolution" "skipped (no GPU or no $sr_model)"
elif [ "$(left)" -lt 150 ]; then
  row "super-resolution" "skipped (time budget)"
else
  note "super-resolution: synth 4096x4096 at 1.0 um/px, upscale and analyze --sr"
  run_hp 90 "$cli" synth --out "$sr_slide" --size 4096x4096 --seed 2002 --mpp 1.0 --overwrite >"$logs/sr_synth.log" 2>&1
  t0=$(date +%s.%N)
  run_hp 120 "$cli" upscale "$sr_slide" --model "$sr_model" --roi 1024,1024,2048,2048 --backend cuda \
    --out "$root/.gpu/work/sr-up.tiff" >"$logs/sr_upscale.log" 2>&1
  rc=$?
  up_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  th=$(timeout 120 "$py" - "$root" "$sr_model" <<'EOF' 2>"$logs/sr_torch.log"
import sys, time, torch
sys.path.insert(0, sys.argv[1] + "/scripts")
from sr_onnx_torch import OnnxSR
net = OnnxSR(sys.argv[2]).cuda().eval()
x = torch.rand(8, 3, 144, 144, device="cuda")  # 128-pixel tiles with 8-pixel halos, batch 8
with torch.inference_mode():
    for _ in range(3):
        net(x)
    torch.cuda.synchronize()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 3:
        net(x)
        n += 1
    torch.cuda.synchronize()
print("%.1f" % (n * 8 * (128 * 2) ** 2 / 1e6 / (time.perf_counter() - t)))
EOF
)
  if [ $rc -ne 0 ]; then
    row "upscale x2 cuda (output MP/s)" "FAIL rc=$rc: $(grep -m1 histoplan "$logs/sr_upscale.log" | cut -c1-100)"
  else
    ours=$(awk -v s="$up_s" 'BEGIN { printf "%.1f", 4096 * 4096 / 1e6 / s }')
    row "upscale x2 cuda (output MP/s)" "histoplan $ours (whole command, 16.8 MP) | torch gpu-resident ${th:-FAIL} | ratio $(awk -v a="$ours" -v b="${th:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')x"
  fi
  for mode in off auto; do
    rm -rf "$root/.gpu/work/sr-$mode"
    run_hp 200 env HP_MODEL_DIR="$root/models/zoo" "$cli" analyze "$sr_slide" --backend cuda --sr $mode \
      --out "$root/.gpu/work/sr-$mode" --slide-id sr >"$logs/sr_analyze_$mode.log" 2>&1 ||
      row "analyze --sr $mode cuda" "FAIL: $(grep -m1 histoplan "$logs/sr_analyze_$mode.log" | cut -c1-100)"
  done
  rm -rf "$root/.gpu/work/sr-fp16"
  run_hp 200 env HP_MODEL_DIR="$root/models/zoo" "$cli" analyze "$sr_slide" --backend cuda --sr auto \
    --sr-precision fp16 --out "$root/.gpu/work/sr-fp16" --slide-id sr >"$logs/sr_analyze_fp16.log" 2>&1 ||
    row "analyze --sr auto --sr-precision fp16" "FAIL: $(grep -m1 histoplan "$logs/sr_analyze_fp16.log" | cut -c1-100)"
  rm -rf "$root/.gpu/work/sr-cpu"
  run_hp 200 env HP_MODEL_DIR="$root/models/zoo" "$cli" analyze "$sr_slide" --backend cpu --sr auto \
    --out "$root/.gpu/work/sr-cpu" --slide-id sr >"$logs/sr_analyze_cpu.log" 2>&1
  r=$("$py" - "$root/.gpu/work" <<'EOF' 2>&1
import csv, json, sys
w = sys.argv[1]
f = {m: json.load(open(f"{w}/sr-{m}/sr/findings.json")) for m in ("off", "auto")}
t = {m: f[m]["analysis"]["tiles_analysed"] / f[m]["timings_s"]["total"] for m in f}
print("--sr auto %.0f tiles/s, off %.0f tiles/s (whole run, %d tiles): SR costs %.2fx; used: %s" % (
    t["auto"], t["off"], f["auto"]["analysis"]["tiles_analysed"], t["off"] / t["auto"],
    f["auto"]["analysis"]["super_resolution"]["used"]))
gpu, cpu = [{r["tile_index"]: r for r in csv.DictReader(open(f"{w}/sr-{m}/sr/tiles.csv"))} for m in ("auto", "cpu")]
cols = [c for c in next(iter(gpu.values())) if c.startswith("prob_")]
d = max(abs(float(gpu[k][c]) - float(cpu[k][c])) for k in gpu for c in cols)
print("%s %d tiles: max |dp| %.2e" % ("PASS" if d < 1e-3 and gpu.keys() == cpu.keys() else "FAIL", len(gpu), d))
# SR in fp16 (the classifier in fp32) against the CPU: probabilities and top classes
try:
    half = {r["tile_index"]: r for r in csv.DictReader(open(f"{w}/sr-fp16/sr/tiles.csv"))}
    d = max(abs(float(half[k][c]) - float(cpu[k][c])) for k in half for c in cols)
    top = sum(half[k]["top_class"] == cpu[k]["top_class"] for k in half) / max(len(half), 1)
    prec = json.load(open(f"{w}/sr-fp16/sr/findings.json"))["analysis"]["super_resolution"]["model"]["precision"]
    print("%s %s, %d tiles: max |dp| %.2e, top class agrees %.2f%%" % (
        "PASS" if top >= 0.99 and half.keys() == cpu.keys() and prec == "fp16" else "FAIL", prec, len(half), d, 100 * top))
except Exception as e:
    print("FAIL: %s" % e)
EOF
)
  row "analyze --sr auto vs off, cuda" "$(echo "$r" | head -1 | cut -c1-110)"
  row "analyze --sr auto cuda vs cpu (tiles.csv)" "$(echo "$r" | sed -n 2p | cut -c1-100)"
  row "analyze --sr-precision fp16 vs cpu fp32" "$(echo "$r" | sed -n 3p | cut -c1-100)"
fi

# ---- torch.compile: PyTorch's best case, when it compiles within a minute -------------------
if skipped compile; then
  row "torch.compile densenet121" "skipped (HP_GPU_SKIP)"
elif [ ! -s "$model" ] || [ "$(left)" -lt 120 ]; then
  row "torch.compile densenet121" "skipped (time budget or no export)"
else
  note "torch.compile densenet121, batch $batch, fp16 autocast, channels_last"
  timeout 110 "$py" - "$batch" "$iters" >"$logs/torch_compile.log" 2>&1 <<'EOF'
import json, statistics, sys, time
import torch, torchvision
batch, iters = int(sys.argv[1]), int(sys.argv[2])
torch.backends.cudnn.benchmark = True
m = torchvision.models.densenet121(weights=None).cuda().eval().to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
c = torch.compile(m)
t0 = time.perf_counter()
with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
    c(x)
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    ts = []
    for i in range(2 + iters):
        torch.cuda.synchronize()
        t = time.perf_counter()
        c(x)
        torch.cuda.synchronize()
        if i >= 2:
            ts.append(time.perf_counter() - t)
med = statistics.median(ts)
print(json.dumps({"compile_s": compile_s, "items_per_s": batch / med}))
EOF
  rc=$?
  tc=$(grep -o '"items_per_s": [0-9.]*' "$logs/torch_compile.log" | cut -d' ' -f2)
  cs=$(grep -o '"compile_s": [0-9.]*' "$logs/torch_compile.log" | cut -d' ' -f2)
  ours=$(grep -o '"items_per_s":[0-9.]*' "$logs/bench_fp16.log" 2>/dev/null | tail -1 | cut -d: -f2)
  if [ $rc -ne 0 ] || [ -z "$tc" ]; then
    row "torch.compile densenet121 b$batch fp16" "did not finish (rc=$rc): $(tail -1 "$logs/torch_compile.log" | cut -c1-90)"
  else
    ratio=$(awk -v a="${ours:-0}" -v b="$tc" 'BEGIN { if (a > 0) printf "%.2f", a / b; else print "?" }')
    row "torch.compile densenet121 b$batch fp16" "torch $(printf '%.0f' "$tc") img/s gpu-resident (compiled in $(printf '%.0f' "$cs") s) | histoplan/compiled ${ratio}x"
  fi
fi
