#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md. Installs what they need, builds, then
# runs `sagedeck bench` (the training loop against the PyTorch-Python loop) or,
# with `serve` first, `sagedeck bench-serve` (a local endpoint against the raw
# forward and a Python server); extra arguments go to the command.
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
if [ "${1:-}" = load ]; then
  # A local endpoint at twice its measured capacity for 60 s (tests/load.rs).
  export SAGEDECK_LOAD_SECONDS="${2:-60}"
  exec cargo test -p sagedeck-tests --test load -- --nocapture
fi
if [ "${1:-}" = serve ]; then
  shift
  exec "$CARGO_TARGET_DIR/debug/sagedeck" bench-serve "$@"
fi
exec "$CARGO_TARGET_DIR/debug/sagedeck" bench "$@"
