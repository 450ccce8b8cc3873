#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the console, then runs
# unit tests, integration tests (real server + moto) and the browser test
# (headless Chromium), all through `cargo test`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SAGEDECK_ROOT"

"$SAGEDECK_ROOT/scripts/setup.sh" test

"$SAGEDECK_ROOT/scripts/build.sh"

step "Running the tests (cargo test --workspace)"
cargo test --workspace --no-fail-fast "$@"
step "All tests passed"
