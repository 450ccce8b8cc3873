#!/usr/bin/env bash
# Installs what Sagedeck needs and is missing; every step checks first, so
# running it again is quick and changes nothing.
#
#   scripts/setup.sh             what the console needs to build and run
#                                (= toolchain, then python)
#   scripts/setup.sh test        ... plus moto, the SageMaker toolkits, Pillow,
#                                Chromium and the browser driver (= run, then test-tools)
#   scripts/setup.sh toolchain   disk space, Rust, the wasm32 target
#   scripts/setup.sh python      the venv with PyTorch
#   scripts/setup.sh test-tools  what only the tests need
# run.sh and test.sh run `toolchain` first and let scripts/build.sh run
# `python` (and `test-tools`) beside the compile: PyTorch is a minute of
# download and unpacking that only torch-sys's build script waits for.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SAGEDECK_ROOT"
want="${1:-run}"
case "$want" in
  run | test | toolchain | python | test-tools) ;;
  *) fail "unknown part '$want'" "run scripts/setup.sh with run, test, toolchain, python or test-tools" ;;
esac

TORCH_VERSION=2.13.0          # the libtorch that tch 0.26 is written for
TORCHVISION_VERSION=0.28.0    # the torchvision of torch 2.13
# The toolkits of SageMaker's PyTorch images, pinned as the images pin them.
SAGEMAKER_TRAINING_VERSION=5.1.4
SAGEMAKER_PYTORCH_TRAINING_VERSION=3.0.0
SAGEMAKER_PYTORCH_INFERENCE_VERSION=2.0.25

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# A shared target folder collects one copy of each dependency per feature set
# it was ever built with (and incremental caches): tens of GB over a busy day.
# A clean build takes minutes, a full disk fails the whole run, so the cache is
# trimmed when it grows past CACHE_LIMIT_GB or the disk runs short.
CACHE_LIMIT_GB="${SAGEDECK_CACHE_LIMIT_GB:-25}"
NEEDED_FREE_GB=12             # torch's venv (~5 GB), a build, the test data

toolchain() {
  step "Disk space and the shared build cache ($CARGO_TARGET_DIR)"
  free_gb() { df -Pk "$1" | awk 'NR==2 { print int($4 / 1048576) }'; }
  cache_gb() { du -sk "$CARGO_TARGET_DIR" 2>/dev/null | awk '{ print int($1 / 1048576) }'; }
  mkdir -p "$CARGO_TARGET_DIR"
  note "cache $(cache_gb) GB, free $(free_gb "$CARGO_TARGET_DIR") GB"
  if [ "$(cache_gb)" -gt "$CACHE_LIMIT_GB" ] || [ "$(free_gb "$CARGO_TARGET_DIR")" -lt "$NEEDED_FREE_GB" ]; then
    note "trimming: removing incremental caches"
    rm -rf "$CARGO_TARGET_DIR"/*/incremental "$CARGO_TARGET_DIR"/*/*/incremental
    if [ "$(cache_gb)" -gt "$CACHE_LIMIT_GB" ] || [ "$(free_gb "$CARGO_TARGET_DIR")" -lt "$NEEDED_FREE_GB" ]; then
      note "trimming: emptying the cache (the next build starts clean)"
      rm -rf "${CARGO_TARGET_DIR:?}"/*
    fi
    note "cache $(cache_gb) GB, free $(free_gb "$CARGO_TARGET_DIR") GB"
  fi
  [ "$(free_gb .)" -ge "$NEEDED_FREE_GB" ] ||
    fail "only $(free_gb .) GB free where the checkout is" "free at least $NEEDED_FREE_GB GB (torch's venv alone is about 5 GB), then run this again"

  step "Rust toolchain"
  command -v cargo >/dev/null || fail "cargo is not installed" "install Rust with rustup (https://rustup.rs), then run this again"
  note "$(rustc --version)"

  step "wasm32-unknown-unknown target (the browser half of the app)"
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    note "present"
  else
    rustup target add wasm32-unknown-unknown ||
      fail "rustup could not add the wasm32 target" "check that rustup can reach static.rust-lang.org, then run this again"
  fi
}

python_env() {
  step "Python environment .venv with PyTorch $TORCH_VERSION (libtorch for the local runtime)"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv ||
      fail "python3 -m venv failed" "install Python 3.9+ with its venv module (Debian: apt-get install python3-venv)"
  fi
  if .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    note "torch $TORCH_VERSION present"
  else
    note "installing torch==$TORCH_VERSION from PyPI (a large download)"
    # --no-compile: the console uses libtorch, not Python's torch; the tests
    # import a small part of it, and Python compiles that part when they do.
    .venv/bin/pip install --quiet --disable-pip-version-check --no-compile "torch==$TORCH_VERSION" ||
      fail "pip could not install torch==$TORCH_VERSION" "check that PyPI is reachable and there is ~5 GB of free disk"
  fi
}

test_tools() {
  step "moto[server] (a local AWS for the integration tests)"
  if [ -x .venv/bin/moto_server ]; then
    note "present"
  else
    .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]" ||
      fail "pip could not install moto[server]" "check that PyPI is reachable"
  fi

  step "SageMaker's container toolkits and torchvision (the tests run train.py and inference.py in them)"
  if .venv/bin/python -c "import sagemaker_training, sagemaker_pytorch_container, sagemaker_pytorch_serving_container, torchvision" 2>/dev/null; then
    note "present"
  else
    # sagemaker-training is what the AWS PyTorch training image runs as its
    # entry point (with sagemaker-pytorch-training); sagemaker-pytorch-inference
    # is the serving image's handler service. torchvision matches torch.
    .venv/bin/pip install --quiet --disable-pip-version-check "torchvision==$TORCHVISION_VERSION" \
        "sagemaker-training==$SAGEMAKER_TRAINING_VERSION" "sagemaker-pytorch-training==$SAGEMAKER_PYTORCH_TRAINING_VERSION" \
        "sagemaker-pytorch-inference==$SAGEMAKER_PYTORCH_INFERENCE_VERSION" ||
      fail "pip could not install the SageMaker toolkits" "check that PyPI is reachable and gcc is installed (sagemaker-training builds a small C extension)"
  fi

  step "Pillow (the endpoint tests make CMYK, grayscale and alpha images with it)"
  if .venv/bin/python -c "import PIL" 2>/dev/null; then
    note "present"
  else
    .venv/bin/pip install --quiet --disable-pip-version-check "pillow==13.0.0" ||
      fail "pip could not install pillow" "check that PyPI is reachable"
  fi

  step "Chromium (the browser test drives Debian's build)"
  if command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; then
    note "$(chromium --version 2>/dev/null || echo present)"
  else
    { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } ||
      fail "could not install chromium" "install Debian's chromium package (apt-get install chromium) as root, or set CHROMIUM to a Chromium binary"
  fi

  step "Browser driver (playwright-core, without its own browser download)"
  command -v node >/dev/null || fail "node is not installed" "install Node.js 18+ (Debian: apt-get install nodejs npm)"
  if [ -d tests/browser/node_modules/playwright-core ]; then
    note "present"
  else
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) ||
      fail "npm ci failed in tests/browser" "check that the npm registry is reachable"
  fi
}

case "$want" in
  run) toolchain; python_env ;;
  test) toolchain; python_env; test_tools ;;
  toolchain) toolchain ;;
  python) python_env ;;
  test-tools) test_tools ;;
esac
step "Setup complete ($want)"
