#!/usr/bin/env bash
# The main job: set-up, build, then the paper's ladder at laptop scale on Fashion-MNIST
# (5 rows x 3 seeds), ending with the table and an HTML report in runs/demo/report/.
# Extra arguments go to `fullbatch demo` (e.g. data.name=cifar10 data.path=../shared/data/cifar10).
set -euo pipefail
cd "$(dirname "$0")/.."
FULLBATCH_TARGET=fullbatch bash scripts/build.sh
exec "${BUILD_DIR:-build}/fullbatch" demo "$@"
