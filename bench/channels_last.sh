#!/usr/bin/env bash
# images/s of the full-batch step in NCHW (impl.channels_last=false) and channels-last
# (impl.channels_last=true) at ResNet-18 widths 4 (Fashion-MNIST, 2,560 images: the demo's model),
# 8, 16, 32 (CIFAR-10, 2,560) and 64 (CIFAR-10, 1,024), fp32, in ROUNDS alternating rounds
# (default 2); one line per measurement. The measurement behind impl.channels_last=auto on the
# CPU (docs/performance.md).
#   bench/channels_last.sh CIFAR10_DIR [key=value ...]
# FULLBATCH (default build/fullbatch) picks the program; THREADS (default 2) its threads.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cifar=${1:?usage: bench/channels_last.sh CIFAR10_DIR [key=value ...]}
shift
for round in $(seq "${ROUNDS:-2}"); do
  for layout in false true; do
    echo "round $round width 4 channels_last $layout: $(bench data.name=fashion-mnist data.size=2560 model.width=4 steps=3 impl.channels_last=$layout "$@")"
    for width in 8 16 32; do
      echo "round $round width $width channels_last $layout: $(bench data.path="$cifar" data.size=2560 model.width=$width steps=3 impl.channels_last=$layout "$@")"
    done
    echo "round $round width 64 channels_last $layout: $(bench data.path="$cifar" data.size=1024 model.width=64 steps=2 impl.channels_last=$layout "$@")"
  done
done
