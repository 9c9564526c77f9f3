#!/usr/bin/env bash
# Debian's libtorch 1.13 (build/) against the PyTorch 2.x wheel's (build-torch2/), side by side on
# this machine: the same commands on the same data, alternating builds, printed as a table with
# the 2.x/1.13 time ratio (below 1: 2.x is faster). Build both first (scripts/build.sh,
# scripts/test_torch2.sh). Measures: the plain and the regularized full-batch step in fp32 and
# with bf16 autocast (fullbatch bench), and one exact Hessian-vector product in gradient passes
# (fullbatch analyze --what curvature, as in docs/analysis.md). REPEATS (default 3): rounds of
# the step measurements.
#   bash bench/torch_versions.sh [DATA_DIR] [extra key=value ...]   (FULLBATCH_113=, FULLBATCH_2X=:
#   other binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cifar10}
shift || true
W=$(mktemp -d /tmp/torch-versions.XXXXXX)
declare -A BIN=([1.13]=${FULLBATCH_113:-build/fullbatch} [2.x]=${FULLBATCH_2X:-build-torch2/fullbatch})
for v in 1.13 2.x; do [[ -x ${BIN[$v]} ]] || { echo "torch_versions: ${BIN[$v]} is missing; build it first" >&2; exit 2; }; done
COMMON=(data.path="$DATA" data.size=1000 model.width=16 impl.threads=${THREADS:-2} "$@")
run() {  # run LOG COMMAND...: the command's output goes to LOG, shown when it fails
  local log=$1; shift
  "$@" >"$log" 2>&1 || { echo "torch_versions: failed: $*" >&2; tail -n 5 "$log" >&2; exit 1; }
}
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
printf '%-44s %10s %10s %8s\n' "what" "1.13" "2.x" "2.x/1.13"
row() { printf '%-44s %10.3f %10.3f %8.2f\n' "$1" "$2" "$3" "$(python3 -c "print($3 / $2)")"; }
# REPEATS rounds alternate the builds (1.13, 2.x, 1.13, ...) and the table takes each side's
# median, so load that comes and goes on a shared machine hits both sides alike.
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
for prec in none bf16; do
  for ((r = 0; r < ${REPEATS:-3}; r++)); do
    for v in 1.13 2.x; do
      run "$W/bench_${prec}_${v}_$r.log" "${BIN[$v]}" bench "${COMMON[@]}" impl.mixed_precision=$prec \
        steps=3 warmup=1 parts=reg --json "$W/bench_${prec}_${v}_$r.json"
    done
  done
  for part in full_batch regularized; do
    declare -A T=()
    for v in 1.13 2.x; do
      xs=()
      for ((r = 0; r < ${REPEATS:-3}; r++)); do
        xs+=("$(json "$W/bench_${prec}_${v}_$r.json" "j['$part']['step_s_median'] if '$part' in j else j['step_s_median']")")
      done
      T[$v]=$(median "${xs[@]}")
    done
    row "$part step, $prec (s)" "${T[1.13]}" "${T[2.x]}"
  done
done
# One exact Hessian-vector product over one block of 128 images, in gradient passes.
for v in 1.13 2.x; do
  run "$W/train_$v.log" "${BIN[$v]}" train --quiet --preset gradreg data.name=cifar10 \
    "${COMMON[@]}" hyp.steps=1 data.test_size=500 --out "$W/run_$v"
  run "$W/hvp_$v.log" "${BIN[$v]}" analyze --checkpoint "$W/run_$v" --what curvature \
    analysis.tolerance=0 analysis.trace_samples=1 analysis.data_size=128 \
    analysis.lanczos_iterations=3 analysis.batchnorm=train impl.threads=${THREADS:-2} --out "$W/hvp_$v"
done
f() { find "$W/hvp_$1" -name curvature.json | head -n 1; }
row "gradient pass, 128 images (s)" "$(json "$(f 1.13)" "j['gradient_pass_seconds']")" "$(json "$(f 2.x)" "j['gradient_pass_seconds']")"
row "Hessian-vector product (gradient passes)" "$(json "$(f 1.13)" "j['product_cost_in_gradient_passes']")" "$(json "$(f 2.x)" "j['product_cost_in_gradient_passes']")"
echo "torch_versions: logs and JSON in $W"
