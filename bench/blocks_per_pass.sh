#!/usr/bin/env bash
# images/s of the full-batch step with impl.blocks_per_pass K = 1, 4, 8 at ResNet-18 widths 4
# (Fashion-MNIST, 2,560 images: the demo's model), 16 (CIFAR-10, 2,560) and 64 (CIFAR-10, 1,024),
# fp32, in ROUNDS alternating rounds (default 2); one line per measurement. docs/performance.md.
#   bench/blocks_per_pass.sh CIFAR10_DIR [key=value ...]
# FULLBATCH (default build/fullbatch) picks the program; THREADS (default 2) its threads.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cifar=${1:?usage: bench/blocks_per_pass.sh CIFAR10_DIR [key=value ...]}
shift
for round in $(seq "${ROUNDS:-2}"); do
  for k in 1 4 8; do
    echo "round $round width 4 K $k: $(bench data.name=fashion-mnist data.size=2560 model.width=4 steps=3 impl.blocks_per_pass=$k "$@")"
    echo "round $round width 16 K $k: $(bench data.path="$cifar" data.size=2560 model.width=16 steps=3 impl.blocks_per_pass=$k "$@")"
    echo "round $round width 64 K $k: $(bench data.path="$cifar" data.size=1024 model.width=64 steps=2 impl.blocks_per_pass=$k "$@")"
  done
done
