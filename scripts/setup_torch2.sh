#!/usr/bin/env bash
# The second torch build's set-up: PyTorch 2.x from the Python package registry, pinned, in the
# git-ignored virtual environment .venv-torch2 (its libtorch is what scripts/test_torch2.sh builds
# against). The registry's default Linux wheel of this version is the CUDA 13.0 build, matching
# the CUDA 13.0 toolkit (nvcc) on the development and CI machines. Safe to run repeatedly: skips
# everything when the pinned version is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH2_VERSION=${TORCH2_VERSION:-2.11.0}
VENV=${TORCH2_VENV:-.venv-torch2}
if [[ -x "$VENV/bin/python" ]] &&
  [[ "$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" == "$TORCH2_VERSION" ]]; then
  exit 0
fi
# Debian's own python3 needs python3-venv for `python3 -m venv`; other Pythons bring venv along.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$TORCH2_VERSION"
"$VENV/bin/python" -c 'import torch; print("setup_torch2: torch", torch.__version__, "CUDA", torch.version.cuda)'
