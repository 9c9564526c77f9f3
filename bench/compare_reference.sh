#!/usr/bin/env bash
# Times fullbatch's full-batch step and the Python reference's (both modes) on the same machine,
# one after the other with the same key=value arguments, and prints the images/s ratios.
#   bench/compare_reference.sh [key=value ...]
# e.g. bench/compare_reference.sh data.path=/work/shared/data/cifar10 data.size=5000 \
#        model.width=16 impl.threads=2 steps=3
# FULLBATCH (default build/fullbatch) and PYTHON (default /usr/bin/python3) pick the programs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FULLBATCH=${FULLBATCH:-$here/../build/fullbatch}
PYTHON=${PYTHON:-/usr/bin/python3}

last_json() { tail -n 1; }
rate() { "$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())["images_per_s"])'; }

cpp=$("$FULLBATCH" bench "$@" parts=none | last_json)
ref=$("$PYTHON" "$here/reference_step.py" "$@" mode=reference | last_json)
opt=$("$PYTHON" "$here/reference_step.py" "$@" mode=optimized | last_json)
c=$(rate <<<"$cpp"); r=$(rate <<<"$ref"); o=$(rate <<<"$opt")
"$PYTHON" - "$c" "$r" "$o" <<'PY'
import sys
c, r, o = map(float, sys.argv[1:])
print(f"full-batch step images/s: fullbatch {c:.1f}, python reference {r:.1f}, "
      f"python optimized {o:.1f}")
print(f"ratio vs reference: {c / r:.2f}x   ratio vs optimized eager: {c / o:.2f}x")
PY
