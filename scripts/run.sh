#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and starts the console on the
# embedded default at http://127.0.0.1:3000. Extra arguments go to `sagedeck`
# (see `--help`), for example: scripts/run.sh --aws off --data-dir /srv/sagedeck
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SAGEDECK_ROOT"

# The toolchain first; PyTorch's venv is installed by build.sh beside the compile.
"$SAGEDECK_ROOT/scripts/setup.sh" toolchain

"$SAGEDECK_ROOT/scripts/build.sh"

# Where it listens: --bind ADDR (or --bind=ADDR) wins over SAGEDECK_BIND.
bind="${SAGEDECK_BIND:-127.0.0.1:3000}"
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --bind) bind="${args[$((i + 1))]:-$bind}" ;;
    --bind=*) bind="${args[$i]#--bind=}" ;;
  esac
done
step "Starting Sagedeck at http://$bind (Ctrl-C stops it)"
exec "$CARGO_TARGET_DIR/debug/sagedeck" --site-root "$SAGEDECK_ROOT/target/site" "$@"
