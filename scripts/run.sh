#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and starts the console on the
# embedded default at http://127.0.0.1:3000. Extra arguments go to `sagedeck`
# (see `--help`), for example: scripts/run.sh --aws off --data-dir /srv/sagedeck
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SAGEDECK_ROOT"

"$SAGEDECK_ROOT/scripts/setup.sh" run

"$SAGEDECK_ROOT/scripts/build.sh"

step "Starting Sagedeck at http://${SAGEDECK_BIND:-127.0.0.1:3000} (Ctrl-C stops it)"
exec "$CARGO_TARGET_DIR/debug/sagedeck" --site-root "$SAGEDECK_ROOT/target/site" "$@"
