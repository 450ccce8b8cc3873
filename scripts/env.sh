# Sourced by the other scripts: the environment every build and run shares.
# shellcheck shell=bash

SAGEDECK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SAGEDECK_ROOT

# Rust tools installed by `cargo install` (cargo-leptos, for `watch`).
export PATH="$HOME/.cargo/bin:$PATH"

# The project-local Python: PyTorch (for tch's libtorch) and moto. torch-sys
# asks `python` for torch's paths when VIRTUAL_ENV is set.
export VIRTUAL_ENV="$SAGEDECK_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# torch-sys only checks that LIBTORCH_USE_PYTORCH is set, but re-runs its build
# script whenever the value changes: the value is this checkout's venv, so a
# shared target folder (below) never links one checkout against another's
# libtorch.
export LIBTORCH_USE_PYTORCH="$VIRTUAL_ENV"

# Compiled dependencies are kept per machine, outside the checkout, so a fresh
# clone (CI's, or a second worktree) rebuilds only Sagedeck's own crates.
# Set CARGO_TARGET_DIR yourself to keep them elsewhere.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sagedeck/target}"

# The AWS SDK's credential chain ends with the EC2 instance metadata service.
# Off the cloud that probe only adds a timeout; on EC2 with an instance role,
# run with AWS_EC2_METADATA_DISABLED=false.
export AWS_EC2_METADATA_DISABLED="${AWS_EC2_METADATA_DISABLED:-true}"

# Each step prints the seconds since this shell started, so a log shows where
# the time went (docs/build-times.md is made from such logs).
step() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }
note() { printf '    %s\n' "$*"; }
fail() {
  printf '\nFAILED: %s\n  What to do: %s\n' "$1" "$2" >&2
  exit 1
}
