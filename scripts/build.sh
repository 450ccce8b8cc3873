#!/usr/bin/env bash
# Builds the console with cargo alone, without cargo-leptos (whose own build
# took 15 of a fresh machine's 28 minutes) or the wasm-bindgen CLI:
#   1. the server binary (cargo, dev profile: optimised where it matters, see
#      Cargo.toml; --release for an optimised server);
#   2. the browser half: the app crate for wasm32 with the hydrate feature,
#      in the wasm-release profile (size-optimised, LTO), split by page
#      and run through wasm-bindgen by tools/wasm-split (a main module and
#      one chunk per page module, the lazy routes of app/src/shell.rs; the
#      wasm-bindgen library inside it), then npm binaryen's wasm-opt -Oz on
#      the main module and each chunk;
#   3. `sagedeck site`: content-hashed names, brotli and gzip copies,
#      hash.txt next to the binary, the public files.
# Step 2 (and the split tool, built once per machine) runs in the background
# while step 1 does, and so does `scripts/setup.sh python` (PyTorch in .venv,
# a minute of download and unpacking on a fresh machine): of the whole build
# only torch-sys's build script needs it, and it asks a `python` that waits
# for the install (--with-test-tools: `setup.sh test-tools` after it).
# `cargo leptos watch --split` does the same for live reloading during
# development (the lazy routes need the split step).
#
#   scripts/build.sh [--release] [--with-test-tools]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SAGEDECK_ROOT"

server_profile=dev
test_tools=no
for arg in "$@"; do
  case "$arg" in
    --release) server_profile=release ;;
    --with-test-tools) test_tools=yes ;;
    *) fail "unknown option '$arg'" "scripts/build.sh takes --release and --with-test-tools" ;;
  esac
done
wasm_profile=wasm-release
profile_dir() { if [ "$1" = dev ]; then echo debug; else echo "$1"; fi; }

# The split tool's wasm-bindgen must be the version the app links (Cargo.lock).
wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
grep -q "^wasm-bindgen-cli-support = \"=$wb_version\"" tools/wasm-split/Cargo.toml ||
  fail "the app links wasm-bindgen $wb_version, tools/wasm-split another version" \
    "set wasm-bindgen-cli-support = \"=$wb_version\" in tools/wasm-split/Cargo.toml"
wasm_opt="$SAGEDECK_ROOT/scripts/tools/node_modules/.bin/wasm-opt"
if [ ! -x "$wasm_opt" ]; then
  step "wasm-opt (npm's binaryen: Debian's is too old for today's wasm)"
  command -v npm >/dev/null || fail "npm is not installed" "install Node.js 18+ with npm (Debian: apt-get install nodejs npm)"
  (cd scripts/tools && npm ci --no-audit --no-fund --silent) || fail "npm ci failed in scripts/tools" "check that the npm registry is reachable"
fi

# The browser half has its own target folder so that its cargo runs beside
# the server's (one target folder is one lock). The two builds end in long
# single-crate steps (the app and server crates; the wasm's LTO link, then
# wasm-opt), each on one core: side by side they take about the time of the
# longer one instead of the sum (docs/build-times.md).
wasm_target="$CARGO_TARGET_DIR/browser"
stage="$CARGO_TARGET_DIR/site-stage"
browser_log="$CARGO_TARGET_DIR/browser-build.log"

# The wasm, split, through wasm-bindgen and wasm-opt, into $stage.
browser_half() {
  step "Browser half (the app crate for wasm32, profile $wasm_profile)"
  cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
    --profile "$wasm_profile" --target-dir "$wasm_target" ||
    fail "the browser half did not build" "read the compiler error above"

  step "The split tool (tools/wasm-split, with wasm-bindgen $wb_version inside; built once per machine)"
  cargo build --locked --manifest-path tools/wasm-split/Cargo.toml --target-dir "$CARGO_TARGET_DIR/tools" ||
    fail "the split tool did not build" "read the compiler error above"
  local split_tool="$CARGO_TARGET_DIR/tools/debug/sagedeck-wasm-split"

  rm -rf "$stage" && mkdir -p "$stage"
  local app_wasm="$wasm_target/wasm32-unknown-unknown/$(profile_dir "$wasm_profile")/app.wasm"
  # Splitting, wasm-bindgen and wasm-opt take a minute or more; their output
  # is kept by the input's content (and the tools' versions), so a build that
  # changed only the server skips them.
  local key cached
  key="$(cat "$app_wasm" "$split_tool" <("$wasm_opt" --version) | sha256sum | cut -c1-16)"
  cached="$CARGO_TARGET_DIR/site-cache/$key"
  if [ -f "$cached/sagedeck_bg.wasm" ]; then
    step "split, wasm-bindgen and wasm-opt: unchanged input, reusing $cached"
    cp "$cached"/* "$stage"/
  else
    local split_dir="$CARGO_TARGET_DIR/site-split"
    rm -rf "$split_dir"
    step "Splitting the wasm by page, then wasm-bindgen $wb_version"
    "$split_tool" "$app_wasm" "$split_dir" "$stage" || fail "splitting the wasm or wasm-bindgen failed" "read its error above"
    step "wasm-opt -Oz (the main module and each chunk, two at a time)"
    printf '%s\n' "$stage"/*.wasm | xargs -P 2 -I{} "$wasm_opt" -Oz {} -o {} || fail "wasm-opt failed" "read its error above"
    rm -rf "$CARGO_TARGET_DIR/site-cache" && mkdir -p "$cached.tmp" && cp "$stage"/* "$cached.tmp"/ && mv "$cached.tmp" "$cached"
  fi
  step "Browser half done"
}

mkdir -p "$CARGO_TARGET_DIR"

# PyTorch, beside the compile. torch-sys's build script runs `python` (the
# venv's, first on the PATH) to find libtorch; during this build a stand-in
# first on the PATH waits while the install runs, then hands over to the
# venv's. The folder is this checkout's and its name fixed, so that no build
# script sees a new PATH from one build to the next.
python_log="$CARGO_TARGET_DIR/python-setup.log"
python_wait="$SAGEDECK_ROOT/target/python-wait"
mkdir -p "$python_wait"
cat > "$python_wait/python" <<STANDIN
#!/bin/sh
# Written by scripts/build.sh: waits for its \`setup.sh python\` to finish.
while [ -e "$python_wait/installing" ] && kill -0 "\$(cat "$python_wait/installing")" 2>/dev/null; do sleep 1; done
exec "$VIRTUAL_ENV/bin/python" "\$@"
STANDIN
chmod +x "$python_wait/python"
python_setup() {
  "$SAGEDECK_ROOT/scripts/setup.sh" python || return
  rm -f "$python_wait/installing"
  [ "$test_tools" = no ] || "$SAGEDECK_ROOT/scripts/setup.sh" test-tools
}
note "PyTorch's venv is checked (and installed if missing) in the background; its log: $python_log"
python_setup > "$python_log" 2>&1 &
python_pid=$!
echo "$python_pid" > "$python_wait/installing"

note "the browser half builds in the background; its log: $browser_log"
browser_half > "$browser_log" 2>&1 &
browser_pid=$!
# Both stop with this script, whichever way it ends.
trap 'for pid in "$browser_pid" "$python_pid"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done' EXIT

# Waits for the Python setup; when it failed, shows its log and stops.
wait_for_python() {
  if ! wait "$python_pid"; then
    cat "$python_log" >&2
    fail "the Python environment could not be set up" "read its log above ($python_log)"
  fi
  grep '^==>' "$python_log" | sed 's/^/    python: /'
  python_pid=""   # reaped: the trap must not signal whatever reuses its number
}

step "Server (cargo build, profile $server_profile)"
if ! PATH="$python_wait:$PATH" cargo build -p server --bin sagedeck --profile "$server_profile"; then
  wait_for_python
  fail "the server did not build" "read the compiler error above"
fi

step "Waiting for the Python environment"
wait_for_python

step "Waiting for the browser half"
if ! wait "$browser_pid"; then
  cat "$browser_log" >&2
  fail "the browser half did not build" "read its log above ($browser_log)"
fi
trap - EXIT
# Its steps, with the seconds they started at, for the log's timeline.
grep '^==>' "$browser_log" | sed 's/^/    browser: /'

step "Site: content-hashed names, brotli and gzip copies"
"$CARGO_TARGET_DIR/$(profile_dir "$server_profile")/sagedeck" site --bindgen "$stage" --out "$SAGEDECK_ROOT/target/site" ||
  fail "assembling the site failed" "read the error above"
note "the console: $CARGO_TARGET_DIR/$(profile_dir "$server_profile")/sagedeck --site-root $SAGEDECK_ROOT/target/site"
