#!/usr/bin/env bash
# Measures the local training loop against the PyTorch-Python reference loop
# (docs/benchmarks.md). Installs what it needs, builds, then runs
# `sagedeck bench` with any extra arguments given here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
source scripts/env.sh
step "torchvision for the reference loop"
.venv/bin/python -c "import torchvision" 2>/dev/null ||
  .venv/bin/pip install --quiet --disable-pip-version-check "torchvision==0.28.0" ||
  fail "pip could not install torchvision==0.28.0" "check that PyPI is reachable"
step "build"
cargo build -p server --bin sagedeck
step "bench"
exec "$CARGO_TARGET_DIR/debug/sagedeck" bench "$@"
