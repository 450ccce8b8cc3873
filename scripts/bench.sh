#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md. Installs what they need, builds, then
# runs `sagedeck bench` (the training loop against the PyTorch-Python loop) or,
# with `serve` first, `sagedeck bench-serve` (a local endpoint against the raw
# forward and a Python server), with `load` the load test, with `pages` the
# page-load benchmark; extra arguments go to the command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
source scripts/env.sh
step "torchvision for the reference loop"
.venv/bin/python -c "import torchvision" 2>/dev/null ||
  .venv/bin/pip install --quiet --disable-pip-version-check "torchvision==0.28.0" ||
  fail "pip could not install torchvision==0.28.0" "check that PyPI is reachable"
if [ "${1:-}" = pages ]; then
  # Page loads: the server's time per page and Chromium's time to a hydrated
  # page, cold and warm, on the console the README's run command builds.
  scripts/setup.sh test
  scripts/build.sh
  data="$(mktemp -d)"
  "$CARGO_TARGET_DIR/debug/sagedeck" --data-dir "$data" --bind 127.0.0.1:3999 --aws off --site-root target/site > "$data/log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
  for _ in $(seq 100); do curl -sf http://127.0.0.1:3999/healthz >/dev/null && break; sleep 0.2; done
  SAGEDECK_URL=http://127.0.0.1:3999 node tests/browser/page_loads.mjs
  exit 0
fi
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
