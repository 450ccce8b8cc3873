#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md. Installs what they need, builds, then
# runs `sagedeck bench` (the training loop against the PyTorch-Python loop) or,
# with `serve` first, `sagedeck bench-serve` (a local endpoint against the raw
# forward and a Python server), with `load` the load test, with `pages` the
# page-load benchmark, with `history` the job history against MLflow; extra arguments go to the command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
source scripts/env.sh
step "torchvision for the reference loop"
.venv/bin/python -c "import torchvision" 2>/dev/null ||
  .venv/bin/pip install --quiet --disable-pip-version-check "torchvision==0.28.0" ||
  fail "pip could not install torchvision==0.28.0" "check that PyPI is reachable"
if [ "${1:-}" = history ]; then
  # The job history at scale: 100,000 local and 100,000 SageMaker jobs,
  # Sagedeck's list over HTTP against MLflow's search_runs on 100,000 runs
  # (scripts/bench_history.py), and the server-rendered pages on that store.
  scripts/setup.sh test
  step "MLflow, in a venv of its own"
  [ -x target/mlflow-venv/bin/python ] || {
    python3 -m venv target/mlflow-venv &&
      target/mlflow-venv/bin/pip install --quiet --disable-pip-version-check "mlflow==3.17.2"
  } || fail "pip could not install mlflow==3.17.2" "check that PyPI is reachable"
  scripts/build.sh
  data="$(mktemp -d)"
  step "seed"
  "$CARGO_TARGET_DIR/debug/sagedeck" seed-history --database-url "sqlite://$data/sagedeck.db"
  # moto answers the poller (an empty account) and the launch form's role
  # list, as an account would; the 100,000 SageMaker jobs are in the cache.
  .venv/bin/moto_server -H 127.0.0.1 -p 3997 > "$data/moto.log" 2>&1 &
  moto=$!
  env AWS_ENDPOINT_URL=http://127.0.0.1:3997 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    "$CARGO_TARGET_DIR/debug/sagedeck" --data-dir "$data" --bind 127.0.0.1:3998 --site-root target/site > "$data/log" 2>&1 &
  server=$!
  trap 'kill $server $moto 2>/dev/null; rm -rf "$data"' EXIT
  for _ in $(seq 150); do curl -sf http://127.0.0.1:3998/healthz >/dev/null && break; sleep 0.2; done
  mkdir -p "$data/mlflow"
  target/mlflow-venv/bin/python scripts/bench_history.py http://127.0.0.1:3998 "$data/sagedeck.db" "$data/mlflow" "${REQUESTS:-200}"
  exit 0
fi
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
