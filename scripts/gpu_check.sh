#!/usr/bin/env bash
# The GPU check of issue 7 in one go, for a machine with a CUDA PyTorch and no apt (the device
# machine): build against that PyTorch's libtorch, run the CUDA tests, time the issue's GPU
# configuration (ResNet-18 width 64, 50,000 CIFAR-10 images, bf16, channels-last) and the Python
# reference beside it, and print a table last. $OUT (default /tmp/gpu-check) gets two files:
# summary.txt (the table) and gpu_check.tar.gz (every log and JSON result).
#   here:  bash scripts/vendor_for_gpu.sh       (copies Debian headers/libs into .carry/vendor)
#   there: bash scripts/gpu_check.sh            (carry .carry/vendor with the call)
# Data: ../shared/data/cifar10 or shared/data/cifar10 if present, else random images in CIFAR-10's
# layout (bench/fake_cifar10.py; timing does not depend on the pixels).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
W=$(mktemp -d /tmp/gpu-check-work.XXXXXX)  # logs and JSON, packed into $OUT at the end
mkdir -p "$OUT"
log() { echo "gpu_check: $*"; }
stage() {  # stage NAME TIMEOUT_S COMMAND...: runs with a time limit, keeps the log, never aborts
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$W/$name.log" 2>&1
  local rc=$?
  log "$name: exit $rc after $((SECONDS - t0)) s (log: $name.log)"
  tail -n 3 "$W/$name.log"
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu_check: GPU /'
prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') || { log "no PyTorch in $PY"; exit 2; }
"$PY" -c 'import torch; print("gpu_check: torch", torch.__version__, "CUDA", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
vendor=$PWD/.carry/vendor
[ -d "$vendor" ] || log "warning: $vendor missing (run scripts/vendor_for_gpu.sh here first and carry .carry/vendor)"

# GPU_CHECK_CMAKE_ARGS: extra cmake arguments, split on spaces on purpose.
# shellcheck disable=SC2086
stage configure 300 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DFULLBATCH_VENDOR_DIR="$vendor" -DFULLBATCH_BUILD_BENCH=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 ${GPU_CHECK_CMAKE_ARGS:-} || exit 1
stage build 480 cmake --build build-gpu -j "$(nproc)" || exit 1

data=""
for d in ../shared/data/cifar10 shared/data/cifar10; do [ -e "$d/data_batch_1.bin.gz" ] || [ -e "$d/data_batch_1.bin" ] && data=$d && break; done
if [ -z "$data" ]; then
  data=/tmp/gpu-check-fake-cifar10
  "$PY" bench/fake_cifar10.py "$data" >/dev/null && log "data: random images in CIFAR-10's layout ($data)"
else
  log "data: $data"
fi

stage tests_cuda 300 build-gpu/fullbatch_tests --gtest_filter='*Cuda*:Trainer.*:Runtime.*:Bench.*:Regularizer*'
# The same 3 steps on CUDA and on the CPU (same keyed augmentation draws): losses and full-gradient
# norms must agree up to cuDNN's TF32 convolutions.
T=(build-gpu/fullbatch train --quiet "data.path=$data" data.size=1024 data.test_size=512 model.width=8 hyp.steps=3 impl.channels_last=false)
stage train_cuda 200 "${T[@]}" impl.device=cuda impl.deterministic=true --out "$W/run_cuda"
stage train_cpu 200 "${T[@]}" impl.device=cpu --out "$W/run_cpu"
"$PY" - "$W/run_cuda/metrics.jsonl" "$W/run_cpu/metrics.jsonl" <<'PY' | tee "$W/cuda_vs_cpu.txt"
import json, sys
try:
    a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
except OSError as e:
    sys.exit(f"gpu_check: cuda_vs_cpu: {e}")
worst = 0.0
for x, y in zip(a, b):
    for k in ("train_loss", "grad_norm"):
        worst = max(worst, abs(x[k] - y[k]) / abs(y[k]))
    print(f"gpu_check: step {x['step']}: loss cuda {x['train_loss']:.6f} cpu {y['train_loss']:.6f}, "
          f"grad norm cuda {x['grad_norm']:.6f} cpu {y['grad_norm']:.6f}")
print(f"gpu_check: cuda_vs_cpu worst relative difference {worst:.2e}: {'PASS' if worst < 1e-2 and len(a) == len(b) == 3 else 'FAIL'}")
PY

B=(build-gpu/fullbatch bench "data.path=$data" model.width=64 impl.device=cuda)
stage bench_bf16 300 "${B[@]}" impl.mixed_precision=bf16 steps=5 warmup=2 --json "$W/bench_bf16.json"
stage bench_bf16_deterministic 200 "${B[@]}" impl.mixed_precision=bf16 impl.deterministic=true steps=3 warmup=1 parts=none --json "$W/bench_bf16_det.json"
stage bench_fp32 200 "${B[@]}" steps=3 warmup=1 parts=none --json "$W/bench_fp32.json"
R=("$PY" bench/reference_step.py "data.path=$data" model.width=64 impl.device=cuda steps=3 warmup=1)
stage python_optimized_bf16 200 "${R[@]}" mode=optimized impl.mixed_precision=bf16 impl.channels_last=true
stage python_reference_bf16 300 "${R[@]}" mode=reference impl.mixed_precision=bf16 impl.channels_last=true
stage python_reference_fp32 300 "${R[@]}" mode=reference

{
echo "gpu_check: summary (full-batch step over $(basename "$data"), ResNet-18 width 64)"
for f in bench_bf16 bench_bf16_deterministic bench_fp32 python_optimized_bf16 python_reference_bf16 python_reference_fp32; do
  line=$(grep '^{' "$W/$f.log" 2>/dev/null | tail -n 1)
  [ -n "$line" ] || { printf '  %-26s (no result)\n' "$f"; continue; }
  "$PY" - "$f" "$line" <<'PY'
import json, sys
name, j = sys.argv[1], json.loads(sys.argv[2])
fb = j.get("full_batch", j)
extra = ""
if "regularized" in j:
    extra = f"  regularized {j['regularized']['step_s_median']:.3f} s ({j['regularized']['step_s_median'] / fb['step_s_median']:.2f}x)"
if "tflops" in fb:
    extra += f"  {fb['tflops']:.1f} TFLOP/s"
print(f"  {name:26s} {fb['step_s_median']:.3f} s  {j['images_per_s']:,.0f} images/s{extra}")
PY
done
tail -n 1 "$W/cuda_vs_cpu.txt" 2>/dev/null
} | tee "$OUT/summary.txt"
tar czf "$OUT/gpu_check.tar.gz" -C "$W" --exclude=checkpoints --exclude=model.pt .
