#!/usr/bin/env bash
# The GPU check (issues 7 and 23) in one go, for a machine with a CUDA PyTorch 2.x in python3, a
# CUDA toolkit (nvcc) and no apt (the device machine): build fullbatch against that PyTorch's
# libtorch with CUDA on (as scripts/test_torch2.sh does here, but with no download), run the CUDA
# tests, time the issue's GPU configuration (ResNet-18 width 64, a full batch of 50,000 CIFAR-10
# images, bf16, channels-last; target <= 0.45 s a step on one H100/H200, the regularized step
# <= 2x that) and the Python reference beside it, and print a table last. $OUT (default
# /tmp/gpu-check) gets summary.txt (the table), gpu_check.log (everything printed) and
# gpu_check.tar.gz (every log and JSON result). Designed to finish in under 8 minutes on a
# 16-core machine with one H200 (each stage has its own time limit).
#   here:  bash scripts/vendor_for_gpu.sh       (copies Debian headers/libs into .carry/vendor)
#   there: bash scripts/gpu_check.sh            (carry .carry/vendor with the call)
# Data: ../shared/data/cifar10 or shared/data/cifar10 if present, else random images in CIFAR-10's
# layout (bench/fake_cifar10.py: 50,000 training images of 3x32x32; a step's time does not depend
# on the pixels). The summary says which was used.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET_S:-460}))  # 7 min 40 s for every stage together
W=$(mktemp -d /tmp/gpu-check-work.XXXXXX)  # logs and JSON, packed into $OUT at the end
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1  # everything printed also lands in $OUT
log() { echo "gpu_check: $*"; }
stage() {  # stage NAME TIMEOUT_S COMMAND...: runs with a time limit, keeps the log, never aborts
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS left=$((DEADLINE - SECONDS))
  # The whole check stays under 8 minutes: a stage gets at most what is left, and is skipped when
  # under 20 s remain (stages run most important first).
  if ((left < 20)); then log "$name: skipped, the 8-minute budget is spent"; return 124; fi
  ((limit > left)) && limit=$left
  timeout "$limit" "$@" >"$W/$name.log" 2>&1
  local rc=$?
  log "$name: exit $rc after $((SECONDS - t0)) s (log: $name.log)"
  tail -n 3 "$W/$name.log"
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu_check: GPU /'
prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') || { log "no PyTorch in $PY"; exit 2; }
"$PY" -c 'import torch; print("gpu_check: torch", torch.__version__, "CUDA", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
# PyTorch's CMake package needs the CUDA toolkit's nvcc for a CUDA libtorch.
if ! command -v nvcc >/dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && export PATH=$d:$PATH && break; done
fi
command -v nvcc >/dev/null || { log "no nvcc on this machine: PyTorch's CMake package needs the CUDA toolkit to build against a CUDA libtorch"; exit 2; }
log "nvcc: $(nvcc --version | tail -n 2 | head -n 1)"
# Hopper only (H100/H200): fullbatch has no kernels of its own; libtorch's CMake reads this list.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
vendor=$PWD/.carry/vendor
[ -d "$vendor" ] || log "warning: $vendor missing (run scripts/vendor_for_gpu.sh here first and carry .carry/vendor)"

# GPU_CHECK_CMAKE_ARGS: extra cmake arguments, split on spaces on purpose.
# shellcheck disable=SC2086
stage configure 300 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DFULLBATCH_VENDOR_DIR="$vendor" -DFULLBATCH_BUILD_BENCH=OFF \
  ${GPU_CHECK_CMAKE_ARGS:-} || exit 1
grep -E 'fullbatch:|CUDA detected' "$W/configure.log"
# The CLI first, so that the issue's figure is measured even if the tests' build runs out of time.
stage build 420 cmake --build build-gpu -j "$(nproc)" --target fullbatch || exit 1

data=""
for d in ../shared/data/cifar10 shared/data/cifar10; do [ -e "$d/data_batch_1.bin.gz" ] || [ -e "$d/data_batch_1.bin" ] && data=$d && break; done
if [ -z "$data" ]; then
  data=/tmp/gpu-check-fake-cifar10
  data_kind="synthetic random images in CIFAR-10's shape (CIFAR-10 itself is not on this machine)"
  "$PY" bench/fake_cifar10.py "$data" >/dev/null && log "data: $data_kind ($data)"
else
  data_kind="CIFAR-10 ($data)"
  log "data: $data"
fi

# The figure the issue aims for first: bf16 full-batch step and regularized step, 50,000 images.
B=(build-gpu/fullbatch bench "data.path=$data" model.width=64 impl.device=cuda)
stage bench_bf16 300 "${B[@]}" impl.mixed_precision=bf16 steps=5 warmup=2 --json "$W/bench_bf16.json"
stage build_tests 300 cmake --build build-gpu -j "$(nproc)" --target fullbatch_tests &&
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

stage bench_bf16_deterministic 200 "${B[@]}" impl.mixed_precision=bf16 impl.deterministic=true steps=3 warmup=1 parts=none --json "$W/bench_bf16_det.json"
stage bench_fp32 200 "${B[@]}" steps=3 warmup=1 parts=none --json "$W/bench_fp32.json"
R=("$PY" bench/reference_step.py "data.path=$data" model.width=64 impl.device=cuda steps=3 warmup=1)
stage python_optimized_bf16 200 "${R[@]}" mode=optimized impl.mixed_precision=bf16 impl.channels_last=true
stage python_reference_bf16 300 "${R[@]}" mode=reference impl.mixed_precision=bf16 impl.channels_last=true
stage python_reference_fp32 300 "${R[@]}" mode=reference

{
echo "gpu_check: summary (full-batch step over the 50,000 training images of $data_kind, ResNet-18 width 64; targets: bf16 <= 0.45 s, regularized <= 2x)"
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
