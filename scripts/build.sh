#!/usr/bin/env bash
# Installs the Debian packages (scripts/setup.sh), configures and builds into ./build.
# Incremental: a second run rebuilds only what changed. FULLBATCH_TARGET=fullbatch builds the
# program alone (scripts/demo.sh: the demo needs no tests); the default builds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j "$JOBS" ${FULLBATCH_TARGET:+--target "$FULLBATCH_TARGET"}
