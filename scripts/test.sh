#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the console, then runs
# unit tests, integration tests (real server + moto) and the browser test
# (headless Chromium), all through `cargo test`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SAGEDECK_ROOT"

# The toolchain first; PyTorch's venv and what only the tests need (moto, the
# SageMaker toolkits, Chromium...) are installed by build.sh beside the compile.
"$SAGEDECK_ROOT/scripts/setup.sh" toolchain

"$SAGEDECK_ROOT/scripts/build.sh" --with-test-tools

step "Running the tests (cargo test --workspace)"
cargo test --workspace --no-fail-fast "$@"
step "All tests passed"
