#!/usr/bin/env bash
# Copies the Debian-packaged headers and static libraries fullbatch builds against into
# .carry/vendor (git-ignored), for a machine that has libtorch but not these packages (the GPU
# machine: no apt there). Static libraries only, so nothing extra is needed at run time.
#   bash scripts/vendor_for_gpu.sh   then carry .carry/vendor and run scripts/gpu_check.sh there
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.carry/vendor
lib=/usr/lib/x86_64-linux-gnu
rm -rf "$dest"
mkdir -p "$dest/include" "$dest/lib"
need() { [ -e "$1" ] || { echo "vendor_for_gpu.sh: $1 is missing; run scripts/setup.sh first" >&2; exit 2; }; }
for h in yaml-cpp nlohmann CLI gtest gmock zlib.h zconf.h; do
  need "/usr/include/$h"
  cp -r "/usr/include/$h" "$dest/include/"
done
for a in libyaml-cpp.a libz.a libgtest.a libgtest_main.a libgmock.a libgmock_main.a; do
  need "$lib/$a"
  cp "$lib/$a" "$dest/lib/"
done
du -sh "$dest" | sed 's/^/vendor_for_gpu.sh: /'
