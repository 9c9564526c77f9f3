#!/usr/bin/env bash
# CTest's entry to the parity test (tests/parity/README.md): the quick rows against the built
# binary. Skipped (exit 77) where Debian's python3-torch or the Fashion-MNIST package is missing.
set -euo pipefail
fullbatch=$1
python=/usr/bin/python3
if ! "$python" -c "import torch" >/dev/null 2>&1; then
  echo "parity: python3-torch is not installed (scripts/setup.sh installs it); skipped"
  exit 77
fi
if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "parity: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); skipped"
  exit 77
fi
exec nice "$python" "$(dirname "$0")/run_parity.py" --fullbatch "$fullbatch" --quick
